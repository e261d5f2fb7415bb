# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Classification heads: turn the flow's NLL and latent z into one anomaly score (higher = anomalous).

``cauchy`` (the default) is the negative log-likelihood per dimension of the input under the same flow
with an independent standard Cauchy latent instead of the Gaussian it is trained with: a latent far out
costs the logarithm of its square, not the square. A new scene moves a few sampled positions very far
(key 2's worst held-out still: 811 standard deviations in one dimension, 99.7 % of its squared latent in
10 of 2,000 dimensions), a degraded image moves most of them a little; under the Gaussian NLL that one
still outscored every flipped and noisy frame, under the Cauchy one none (detector protocol, docs/how-it-works.md).
``nll`` is the flow's negative log-likelihood per dimension; ``znorm`` the mean squared latent; ``hbos``
the histogram-based outlier score on z the reference uses, but summing log densities with a floor
instead of pyod's min-max-capped probabilities, which saturate at 1.0 for every held-out frame.
The ``cauchy`` score swaps the Gaussian term out of the flow's float32 NLL, which has rounded the
log-determinant away once that term is large: beyond ``GAUSSIAN_LIMIT`` the head cannot judge and returns
+inf (anomalous), never a small number left by the cancellation (an input of normal noise in network units
scored 0.23 against a threshold of 1.53 before).
``supervised`` is a logistic regression (scikit-learn) on summaries of the flow's output (NLL, mean
squared latent, largest latent, share of latents beyond 3, each standardised on clean frames, with their
squares, so an input the flow finds too *likely* can count as anomalous too), trained to separate clean
fit frames from generated anomalies of them; its score is the log-odds of "anomalous".
"""

import math

import torch
from torch import nn

from daain_ros.errors import DaainError, NotFittedError

HEAD_KINDS = ("cauchy", "nll", "znorm", "hbos", "supervised")
CAUCHY_OFFSET = math.log(math.pi) - 0.5 * math.log(2 * math.pi)  # Cauchy minus Gaussian constant, per dim
#: Largest Gaussian term (0.5 * mean z**2) the ``cauchy`` score subtracts: float32's spacing there is 2**-7, so the
#: rounding left stays below a hundredth of a nat, where a frame's score is read against its threshold.
GAUSSIAN_LIMIT = 2.0 ** 16
SUMMARIES = 4
HBOS_BINS = 16
HBOS_FLOOR = 1e-3


class ScoreHead(nn.Module):
    """One of ``HEAD_KINDS``; ``hbos`` keeps per-dimension histograms of the training latents."""

    def __init__(self, kind, dims):
        super().__init__()
        if kind not in HEAD_KINDS:
            raise DaainError(f"head {kind!r}: expected one of {', '.join(HEAD_KINDS)}")
        self.kind = kind
        self.register_buffer("low", torch.zeros(dims))
        self.register_buffer("width", torch.ones(dims))
        self.register_buffer("log_density", torch.zeros(dims, HBOS_BINS + 2))
        if kind == "supervised":  # only then: the other heads' artifacts keep their layout
            self.register_buffer("summary_mean", torch.zeros(SUMMARIES))
            self.register_buffer("summary_scale", torch.ones(SUMMARIES))
            self.register_buffer("weights", torch.zeros(2 * SUMMARIES))
            self.register_buffer("bias", torch.zeros(()))
        self.register_buffer("fitted", torch.tensor(kind not in ("hbos", "supervised")))
        # The buffer is what the artifact stores; forward reads this copy of it, so no frame waits on the device.
        self.is_fitted = kind not in ("hbos", "supervised")
        self.register_load_state_dict_post_hook(lambda module, _keys: module._sync_fitted())

    def _sync_fitted(self):
        self.is_fitted = bool(self.fitted)

    def _mark_fitted(self):
        self.fitted.fill_(True)
        self.is_fitted = True

    @torch.no_grad()
    def fit(self, z):
        """Fits the histograms on training latents N x D (only ``hbos`` needs it); returns self."""
        if self.kind == "hbos":
            low, high = z.min(0).values, z.max(0).values
            self.low.copy_(low)
            self.width.copy_(((high - low) / HBOS_BINS).clamp_min(1e-6))
            bins = self._bins(z)
            ones = torch.ones_like(bins.T, dtype=z.dtype)
            counts = torch.zeros_like(self.log_density).scatter_add_(1, bins.T, ones)
            density = counts / len(z) / self.width[:, None]
            self.log_density.copy_(density.clamp_min(HBOS_FLOOR * density.max()).log())
            self._mark_fitted()
        return self

    @torch.no_grad()
    def fit_supervised(self, clean, anomalous):
        """Fits the ``supervised`` head on (nll, z) pairs of clean and of anomalous activations; returns self."""
        from sklearn.linear_model import LogisticRegression

        clean_summary = _summaries(*clean)
        self.summary_mean.copy_(clean_summary.mean(0))
        self.summary_scale.copy_(clean_summary.std(0).clamp_min(1e-6))
        features = torch.cat([self._features(clean_summary), self._features(_summaries(*anomalous))])
        labels = [0] * len(clean[0]) + [1] * len(anomalous[0])
        model = LogisticRegression(class_weight="balanced", max_iter=1000).fit(features.cpu().double().numpy(),
                                                                               labels)
        self.weights.copy_(torch.as_tensor(model.coef_[0], dtype=self.weights.dtype))
        self.bias.fill_(float(model.intercept_[0]))
        self._mark_fitted()
        return self

    def _features(self, summary):
        standard = (summary - self.summary_mean) / self.summary_scale
        return torch.cat([standard, standard ** 2], 1)

    def _bins(self, z):
        """Bin 0 and HBOS_BINS + 1 hold values below and above the training range."""
        return ((z - self.low) / self.width).floor().long().add(1).clamp(0, HBOS_BINS + 1)

    def forward(self, nll, z):
        if not self.is_fitted:
            raise NotFittedError(f"{self.kind} head used before fit()")
        if self.kind == "nll":
            return nll
        if self.kind == "cauchy":  # the Gaussian NLL with each 0.5 z**2 swapped for log(1 + z**2)
            squared = z ** 2
            score = nll + (torch.log1p(squared) - 0.5 * squared).mean(1) + CAUCHY_OFFSET
            return score.masked_fill(squared.mean(1) > 2 * GAUSSIAN_LIMIT, math.inf)
        if self.kind == "znorm":
            return (z ** 2).mean(1)
        if self.kind == "supervised":
            return self._features(_summaries(nll, z)) @ self.weights + self.bias
        return -self.log_density.gather(1, self._bins(z).T).T.mean(1)


def _summaries(nll, z):
    """N x SUMMARIES: NLL, mean squared latent, largest absolute latent, share of latents beyond 3."""
    magnitude = z.abs()
    return torch.stack([nll, (z ** 2).mean(1), magnitude.amax(1), (magnitude > 3).float().mean(1)], 1)
