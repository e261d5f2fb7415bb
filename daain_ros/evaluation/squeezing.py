# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Feature squeezing with JPEG, a defence tried against the key-agnostic attacker (issue 16), and its attacker.

Xu et al., "Feature Squeezing: Detecting Adversarial Examples in Deep Neural Networks", NDSS 2018: a frame
whose labels change more than a clean frame's when it is JPEG-compressed is flagged. Its 8x8 grid may be
shifted by an offset ``(dx, dy)`` in ``[0, 8)^2`` (the rows above ``dy`` and the columns left of ``dx`` stay
as they are): a secret offset per frame is a key the attacker does not know.

``SqueezingCritic`` is the attacker adapted to the check: the compression has no gradient, so it is passed
straight through (BPDA, Athalye et al., "Obfuscated Gradients Give a False Sense of Security", ICML 2018);
against a secret offset it draws random offsets at every step (expectation over transformations).
"""

import numpy as np
import torch
import torch.nn.functional as F

from daain_ros.errors import DaainError
from daain_ros.evaluation.attacks import predict_labels
from daain_ros.evaluation.corruptions import jpeg_round_trip
from daain_ros.segmentation.preprocess import normalize, to_pixels

BLOCK = 8  # JPEG's block: offsets beyond it repeat a grid
#: How many columns the check's term fills in the attacker's hinge, which averages its critic's columns:
#: as many as 16 of the key-agnostic critic's 129 layers (official ESPNet), so that it weighs in.
COPIES = 16


def compress(image, quality, offset=(0, 0)):
    """BGR uint8 ``image`` JPEG-compressed at ``quality`` on an 8x8 grid starting at ``offset`` (dx, dy)."""
    dx, dy = offset
    if not (0 <= dx < BLOCK and 0 <= dy < BLOCK):
        raise DaainError(f"offset {offset}: expected dx and dy in [0, {BLOCK})")
    out = np.array(image, dtype=np.uint8)
    out[dy:, dx:] = jpeg_round_trip(out[dy:, dx:], quality)
    return out


def random_offsets(count, rng):
    """``count`` grid offsets drawn uniformly by the numpy ``rng``."""
    return [tuple(int(v) for v in pair) for pair in rng.integers(0, BLOCK, (count, 2))]


def all_offsets():
    """Every distinct grid offset."""
    return [(dx, dy) for dy in range(BLOCK) for dx in range(BLOCK)]


class JpegConsistency:
    """Per frame, the share of pixels whose label stays the same when the frame is JPEG-compressed."""

    def __init__(self, model, size, quality=50):
        if not 1 <= quality <= 100:
            raise DaainError(f"JPEG quality {quality}: expected 1-100")
        self.model = model
        self.size = tuple(size)
        self.quality = quality

    def labels(self, images_bgr):
        """The frames' own labels, which :meth:`__call__` compares with the compressed frames'."""
        return predict_labels(self.model, images_bgr, self.size)

    def __call__(self, images_bgr, offsets=None, labels=None):
        """Agreements (float per frame) of frames at network size, each compressed at its offset (default 0, 0).

        :param labels: the frames' own labels (:meth:`labels`), when already known: judging frames at many offsets
            needs them once.
        """
        offsets = offsets or [(0, 0)] * len(images_bgr)
        plain = self.labels(images_bgr) if labels is None else labels
        squeezed = predict_labels(self.model, [compress(image, self.quality, offset)
                                               for image, offset in zip(images_bgr, offsets)], self.size)
        return (plain == squeezed).mean((1, 2))


class SqueezingCritic:
    """The attacker's critic for DAAIN plus the JPEG check: ``inner``'s columns, then the check's.

    The check's column is the log of the share of pixels whose label changes under compression; its gradient
    is that of the log of a soft share (the softplus of each pixel's negative margin for its own label) through
    the compressed image, the compression itself passed straight through. ``draws`` random offsets per step
    (from ``seed``), each its own column, attack a secret offset; ``None`` attacks the fixed grid.

    :param agreement_limit: the check's threshold on the agreement: below it a frame is flagged.
    """

    def __init__(self, inner, check, agreement_limit, draws=None, seed=0):
        if draws is not None and draws < 1:
            raise DaainError(f"{draws} offsets per step: expected at least 1, or None for the fixed grid")
        self.inner = inner
        self.check = check
        self.limit = float(np.log(max(1.0 - agreement_limit, 1e-4)))
        self.draws = draws
        self.rng = np.random.default_rng(seed)
        self.size = inner.size
        self.margin = inner.margin

    def _offsets(self):
        return [(0, 0)] if self.draws is None else random_offsets(self.draws, self.rng)

    def __call__(self, x):
        """(logits, scores N x (inner's columns + COPIES per offset drawn))."""
        logits, scores = self.inner(x)
        pixels = to_pixels(x.detach()).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        labels = logits.detach().argmax(1, keepdim=True)
        columns = [scores]
        for offset in self._offsets():
            squeezed = np.stack([compress(image, self.check.quality, offset) for image in pixels])
            target = normalize(torch.from_numpy(squeezed).to(x.device).permute(0, 3, 1, 2).float() / 255)
            columns.append(self._disagreement(x + (target - x).detach(), labels).expand(-1, COPIES))
        return logits, torch.cat(columns, 1)

    def _disagreement(self, x, labels):
        logits = self.check.model.logits(x)
        own = logits.gather(1, labels)
        margin = (own - logits.scatter(1, labels, float("-inf")).amax(1, keepdim=True)).squeeze(1)
        hard = (margin <= 0).float().mean((1, 2)).clamp_min(1e-4)
        soft = F.softplus(-margin).mean((1, 2)).log()
        return (hard.log() + soft - soft.detach())[:, None]

    def limits(self, clean_scores):
        """``inner``'s limits, and the check's threshold (or the image's own clean disagreement, if higher)."""
        inner = clean_scores.shape[1] - COPIES * (1 if self.draws is None else self.draws)
        return torch.cat([self.inner.limits(clean_scores[:, :inner]), clean_scores[:, inner:].clamp_min(self.limit)],
                         1)
