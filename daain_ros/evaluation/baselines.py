# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Per-image anomaly scores of the segmentation network itself: the baselines DAAIN is compared with.

Each score is higher for more anomalous images and aggregates per-pixel values by their mean over the
image. As in pytorch-ood, every detector has ``fit(...) -> self`` and ``predict(...) -> scores`` (a float
tensor with one value per image) and ``predict`` takes what one forward gives (logits or pooled features),
so ``baseline_scores`` computes all of them from one segmentation forward (``forward_with_features``, which
also serves the DAAIN pipeline's monitored forward); MC dropout alone needs its own ``passes`` forwards.
"""

import torch
from sklearn.covariance import LedoitWolf
from torch import nn

from daain_ros.errors import DaainError, NotFittedError


def _check_logits(logits):
    if logits.ndim != 4:
        raise DaainError(f"logits of shape {tuple(logits.shape)}: expected N x classes x H x W")
    return logits


class MaxSoftmax:
    """1 - mean max-softmax probability.

    Hendrycks and Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution Examples in Neural
    Networks", ICLR 2017.
    """

    def fit(self, *args, **kwargs):
        return self

    def predict(self, logits):
        return 1.0 - _check_logits(logits).softmax(1).amax(1).mean((1, 2))


class MaxLogit:
    """Negated mean max logit.

    Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World Settings", ICML 2022.
    """

    def fit(self, *args, **kwargs):
        return self

    def predict(self, logits):
        return -_check_logits(logits).amax(1).mean((1, 2))


def mean_entropy(logits):
    """Mean over pixels of the softmax entropy (nats), per image."""
    log_p = _check_logits(logits).log_softmax(1)
    return -(log_p.exp() * log_p).sum(1).mean((1, 2))


class Entropy:
    """Mean per-pixel entropy of the softmax."""

    def fit(self, *args, **kwargs):
        return self

    def predict(self, logits):
        return mean_entropy(logits)


def encoder_of(model):
    """The ESPNet-C encoder of a loaded ``SegmentationModel`` (the whole net for ESPNet-C checkpoints)."""
    return getattr(model.net, "encoder", model.net)


class MCDropout:
    """Mean per-pixel entropy of the mean softmax over ``passes`` forwards with dropout switched on.

    Gal and Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016.

    The official ESPNet has no dropout, so element-wise dropout with rate ``p`` is inserted at inference
    only, on the encoder's last features (the output of ``b3``, which feed the classifier and the decoder),
    through a forward hook removed after each call; the weights are not fine-tuned for it. Dropout after
    every level-3 block instead compounds through the residual chain: at p=0.1 the mean prediction agrees
    with the clean one on about 20 % of pixels, against about 95 % here (two footage frames). The DAAIN
    reference fine-tuned an ESPNet with dropout layers, so its MC-dropout numbers are not directly
    comparable with these.
    """

    def __init__(self, model, p=0.1, passes=8, seed=0):
        if not 0 < p < 1 or passes < 1:
            raise DaainError(f"MC dropout p={p!r}, passes={passes!r}: expected 0 < p < 1 and passes >= 1")
        self.model, self.p, self.passes, self.seed = model, p, passes, seed

    def fit(self, *args, **kwargs):
        return self

    def _dropout_hook(self, generator):
        def hook(module, inputs, output):
            keep = torch.empty_like(output).bernoulli_(1 - self.p, generator=generator)
            return output * keep / (1 - self.p)
        return hook

    def predict(self, x):
        """Scores for network inputs ``x`` (N x 3 x H x W, as ``preprocess`` returns them)."""
        generator = torch.Generator(x.device).manual_seed(self.seed)
        handle = encoder_of(self.model).b3.register_forward_hook(self._dropout_hook(generator))
        try:
            with torch.inference_mode():
                probs = sum(self.model.logits(x).softmax(1) for _ in range(self.passes)) / self.passes
        finally:
            handle.remove()
        return -(probs * probs.clamp_min(1e-12).log()).sum(1).mean((1, 2))


class Mahalanobis(nn.Module):
    """Squared Mahalanobis distance of pooled encoder features to the clean frames' Gaussian.

    With a Ledoit-Wolf shrunk covariance (Lee et al., "A Simple Unified Framework for Detecting
    Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018; one Gaussian, not one per class,
    since a segmentation image has no single class).

    Features: ``pooled_features`` (global average of ESPNet-C's last concatenation, 256 values).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("precision", torch.empty(0, 0))

    @property
    def fitted(self):
        return self.mean.numel() > 0

    def fit(self, features):
        features = torch.as_tensor(features)
        if features.ndim != 2 or len(features) < 2:
            raise DaainError(f"features of shape {tuple(features.shape)}: expected N x D with N >= 2")
        estimate = LedoitWolf().fit(features.detach().double().cpu().numpy())
        self.mean = torch.as_tensor(estimate.location_, dtype=torch.float64, device=features.device)
        self.precision = torch.as_tensor(estimate.precision_, dtype=torch.float64, device=features.device)
        return self

    def predict(self, features):
        if not self.fitted:
            raise NotFittedError("Mahalanobis.predict before fit: fit it on clean frames' pooled features")
        features = torch.as_tensor(features)
        if features.ndim != 2 or features.shape[1] != self.mean.numel():
            raise DaainError(f"features of shape {tuple(features.shape)}: expected N x {self.mean.numel()}")
        centred = features.to(self.mean) - self.mean
        return ((centred @ self.precision) * centred).sum(1).float()


def forward_with_features(model, x, forward=None):
    """One segmentation forward: (what ``forward`` returns, pooled encoder features N x 256).

    The features are the global average pool of ``encoder.features(x)[2]`` (level-3 concatenation after
    its BN-PReLU ``b3``), taken by a hook on ``b3``'s PReLU so the forward is not repeated. The hook sits
    on that leaf layer because the monitor's graph (:mod:`daain_ros.detector.monitor`) calls leaf layers
    as modules but traces through their parents.

    :param forward: runs ``model`` on ``x``; default ``model.logits`` (logits at input size); a pipeline's
        monitor gives (logits, sampled activations) from the same forward.
    """
    captured = []
    handle = encoder_of(model).b3.act.register_forward_hook(lambda m, i, out: captured.append(out.mean((2, 3))))
    try:
        out = (forward or model.logits)(x)
    finally:
        handle.remove()
    return out, captured[0]


def pooled_features(model, x):
    """Pooled encoder features of network inputs ``x``, for fitting ``Mahalanobis`` on clean frames."""
    with torch.inference_mode():
        return forward_with_features(model, x)[1]


BASELINES = ("msp", "max_logit", "entropy", "mahalanobis", "mc_dropout")


def baseline_scores(x, logits, features, mahalanobis=None, mc_dropout=None):
    """Every baseline's score from one segmentation forward (``forward_with_features``) of inputs ``x``.

    :param mahalanobis: a fitted ``Mahalanobis``; its score is left out when None.
    :param mc_dropout: an ``MCDropout``; adds its ``passes`` forwards on ``x``; left out when None.
    :return: dict name (in ``BASELINES`` order) -> tensor of one score per image.
    """
    scores = {"msp": MaxSoftmax().predict(logits), "max_logit": MaxLogit().predict(logits),
              "entropy": mean_entropy(logits)}
    if mahalanobis is not None:
        scores["mahalanobis"] = mahalanobis.predict(features)
    if mc_dropout is not None:
        scores["mc_dropout"] = mc_dropout.predict(x)
    return scores
