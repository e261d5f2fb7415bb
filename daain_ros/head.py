"""Classification heads: turn the flow's NLL and latent z into one anomaly score (higher = anomalous).

``nll`` is the flow's negative log-likelihood per dimension; ``znorm`` the mean squared latent; ``hbos``
the histogram-based outlier score on z the reference uses, but summing log densities with a floor
instead of pyod's min-max-capped probabilities, which saturate at 1.0 for every held-out frame.
"""

import torch
from torch import nn

from daain_ros.errors import DaainError, NotFittedError

HEAD_KINDS = ("nll", "znorm", "hbos")
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
        self.register_buffer("fitted", torch.tensor(kind != "hbos"))

    @torch.no_grad()
    def fit(self, z):
        """Fits the histograms on training latents N x D (only ``hbos`` needs it); returns self."""
        if self.kind == "hbos":
            low, high = z.min(0).values, z.max(0).values
            self.low.copy_(low)
            self.width.copy_(((high - low) / HBOS_BINS).clamp_min(1e-6))
            bins = self._bins(z)
            counts = torch.zeros_like(self.log_density).scatter_add_(1, bins.T, torch.ones_like(bins.T,
                                                                                              dtype=z.dtype))
            density = counts / len(z) / self.width[:, None]
            self.log_density.copy_(density.clamp_min(HBOS_FLOOR * density.max()).log())
            self.fitted.fill_(True)
        return self

    def _bins(self, z):
        """Bin 0 and HBOS_BINS + 1 hold values below and above the training range."""
        return ((z - self.low) / self.width).floor().long().add(1).clamp(0, HBOS_BINS + 1)

    def forward(self, nll, z):
        if not bool(self.fitted):
            raise NotFittedError(f"{self.kind} head used before fit()")
        if self.kind == "nll":
            return nll
        if self.kind == "znorm":
            return (z ** 2).mean(1)
        return -self.log_density.gather(1, self._bins(z).T).T.mean(1)
