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

from daain_ros.errors import DaainError
from daain_ros.evaluation.adaptive_critics import AgreementCritic, labels_of, log_disagreement
from daain_ros.evaluation.attacks import predict_labels
from daain_ros.evaluation.corruptions import jpeg_round_trip
from daain_ros.segmentation.preprocess import normalize, to_pixels

BLOCK = 8  # JPEG's block: offsets beyond it repeat a grid


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


class SqueezingCritic(AgreementCritic):
    """The attacker's critic for DAAIN plus the JPEG check: the check's labels are those of the compressed frame.

    The soft share's gradient flows through the compressed image, the compression itself passed straight
    through. ``draws`` random offsets per step (from ``seed``), each its own term, attack a secret offset;
    ``None`` attacks the fixed grid.
    """

    def __init__(self, inner, check, agreement_limit, draws=None, seed=0):
        if draws is not None and draws < 1:
            raise DaainError(f"{draws} offsets per step: expected at least 1, or None for the fixed grid")
        super().__init__(inner, agreement_limit, 1 if draws is None else draws)
        self.check = check
        self.draws = draws
        self.rng = np.random.default_rng(seed)

    def _offsets(self):
        return [(0, 0)] if self.draws is None else random_offsets(self.draws, self.rng)

    def disagreements(self, x, logits):
        labels = labels_of(logits)
        pixels = to_pixels(x.detach()).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        terms = []
        for offset in self._offsets():
            squeezed = np.stack([compress(image, self.check.quality, offset) for image in pixels])
            target = normalize(torch.from_numpy(squeezed).to(x.device).permute(0, 3, 1, 2).float() / 255)
            terms.append(log_disagreement(self.check.model.logits(x + (target - x).detach()), labels))
        return terms
