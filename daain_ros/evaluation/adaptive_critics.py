# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What an adaptive attacker keeps quiet: one or several DAAIN detectors, scored from one forward.

A critic is what :func:`daain_ros.evaluation.adaptive.adaptive_attack` asks, at every step, whether the
perturbed input still looks clean: ``critic(x) -> (logits, scores N x K)``, ``limits(clean scores)`` (N x
K) above which the attacker counts itself caught, and the ``margin`` it aims below them. The white-box attacker's
critic is the real detector; a surrogate attacker's is a detector of its own (same recipe, its own key);
the expectation over keys (EOT, Athalye et al., "Synthesizing Robust Adversarial Examples", ICML 2018) is
several of them, each a column. Their keys are merged into one so that a single ``ActivationMonitor``
gathers every key's samples in one ESPNet forward: K surrogates cost K small flows, not K networks.
"""

import numpy as np
import torch
import torch.nn.functional as F

from daain_ros.detector.monitor import ActivationMonitor
from daain_ros.detector.sampling_key import SamplingKey
from daain_ros.errors import DaainError

DETECTOR_MARGIN = 0.1  # score units (the head's NLL per dimension): how far below its threshold to aim
# Without the real key, aim far deeper. Measured on the protocol (EOT over 3 keys, 2026-12-01): at 2/255 a
# margin of 0.1 left frames 150 and 160 flagged and 0.6 neither (4 of frames 150-200); at 4/255 margins of
# 0.1, 0.3 and 0.6 all left them flagged.
TRANSFER_MARGIN = 0.6
#: How many columns each term of a label check fills in the attacker's hinge, which averages its critic's
#: columns: as many as 16 of the key-agnostic critic's 129 layers (official ESPNet), so that it weighs in.
COPIES = 16


def merge_keys(keys):
    """One key holding every key's samples, and for each key the columns of its own samples.

    A key's indices are sorted, so its monitor returns its samples in key order; the merged key's are sorted
    too (stably: a sample two keys share appears twice), and key ``k``'s row ``i`` lands at the position its
    index takes in that order. So ``activations[:, columns[k]]`` is what key ``k``'s own monitor returns.
    """
    first = keys[0]
    for key in keys[1:]:
        if key.layers != first.layers or key.size != first.size:
            raise DaainError(f"keys over {len(key.layers)} layers at {key.size} and over {len(first.layers)} "
                             f"at {first.size}: expected keys of one model at one size")
    indices = np.concatenate([key.indices for key in keys])
    order = np.lexsort(indices.T[::-1])  # by channel, then y, then x; stable
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    bounds = np.cumsum([0] + [key.dims for key in keys])
    columns = [torch.as_tensor(position[start:end]) for start, end in zip(bounds[:-1], bounds[1:])]
    return SamplingKey(indices[order], first.layers, first.size, first.radius), columns


class DetectorCritic:
    """Scores of ``detectors`` (one per column) on ``model``'s input, from one monitored forward."""

    def __init__(self, model, detectors, margin=DETECTOR_MARGIN):
        if not detectors:
            raise DaainError("no detectors given: expected at least one")
        key, columns = merge_keys([detector.key for detector in detectors])
        self.monitor = ActivationMonitor(model, key)
        self.detectors = list(detectors)
        self.columns = [c.to(model.device) for c in columns]
        self.thresholds = torch.tensor([float(d.threshold) for d in detectors], device=model.device)
        self.margin = margin
        self.size = key.size

    def __call__(self, x):
        """(logits, scores N x detectors)."""
        logits, activations = self.monitor(x)
        scores = [d(activations.index_select(1, c)) for d, c in zip(self.detectors, self.columns)]
        return logits, torch.stack(scores, 1)

    def limits(self, clean_scores):
        """Each detector's threshold, for every image whatever its clean score."""
        return self.thresholds.expand_as(clean_scores)


class AgreementCritic:
    """The attacker's critic for DAAIN plus a check that flags frames whose labels something else disagrees with.

    ``inner``'s columns, then ``COPIES`` columns per term of :meth:`disagreements` (one per random draw or
    surrogate the attacker averages over): the log of the share of pixels on which the check disagrees with
    ESPNet's labels, whose gradient is that of a soft share (the softplus of each pixel's negative margin for
    ESPNet's label), since the hard share has none.

    :param agreement_limit: the check's threshold on the agreement: below it a frame is flagged.
    :param terms: how many terms :meth:`disagreements` returns.
    """

    def __init__(self, inner, agreement_limit, terms):
        self.inner = inner
        self.terms = terms
        self.limit = float(np.log(max(1.0 - agreement_limit, 1e-4)))
        self.size = inner.size
        self.margin = inner.margin

    def disagreements(self, x, logits):
        """Per term, N x 1 log disagreements of the check on ``x`` with ESPNet's ``logits`` there."""
        raise NotImplementedError

    def __call__(self, x):
        """(logits, scores N x (inner's columns + COPIES per term))."""
        logits, scores = self.inner(x)
        return logits, torch.cat([scores] + [d.expand(-1, COPIES) for d in self.disagreements(x, logits)], 1)

    def limits(self, clean_scores):
        """``inner``'s limits, and the check's threshold (or the image's own clean disagreement, if higher)."""
        inner = self.inner.limits(clean_scores[:, :-COPIES * self.terms])
        return torch.cat([inner, clean_scores[:, inner.shape[1]:].clamp_min(self.limit)], 1)


def labels_of(logits):
    """N x 1 x H x W: the best class of each pixel, without gradient."""
    return logits.detach().argmax(1, keepdim=True)


def log_disagreement(logits, labels):
    """N x 1: the log share of pixels whose best class in ``logits`` is not ``labels``' (soft gradient)."""
    own = logits.gather(1, labels)
    margin = (own - logits.scatter(1, labels, float("-inf")).amax(1, keepdim=True)).squeeze(1)
    hard = (margin <= 0).float().mean((1, 2)).clamp_min(1e-4)
    soft = F.softplus(-margin).mean((1, 2)).log()
    return (hard.log() + soft - soft.detach())[:, None]
