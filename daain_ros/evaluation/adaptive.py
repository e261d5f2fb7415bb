# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""An adaptive attacker who also keeps a DAAIN detector quiet: is the secret sampling key worth keeping?

DAAIN argues that an attacker without the detector and its key cannot backpropagate through it. The
attacker here runs PGD on the segmentation while penalising a detector's score above its threshold. With
a *surrogate* (same recipe, another key, fitted on the same frames) the attacker knows everything but the
key; with the real detector it is white-box. The real detector's flag rate on both tells what the key buys.
"""

import torch

from daain_ros.detector.monitor import ActivationMonitor
from daain_ros.evaluation.attacks import attack

ADAPTIVE_KIND = "pgd-adaptive"


class DetectorPenalty:
    """``extra_loss`` for the attacks: log(1 + score above the threshold) per image, times ``weight``."""

    def __init__(self, model, detector, weight=1.0):
        self.monitor = ActivationMonitor(model, detector.key)
        self.detector = detector
        self.threshold = float(detector.threshold)
        self.weight = weight

    def __call__(self, x):
        _, activations = self.monitor(x)
        excess = (self.detector(activations) - self.threshold).clamp_min(0)
        return self.weight * torch.log1p(excess)

    def remove(self):
        self.monitor.remove()


def adaptive_attack(model, detector, images_bgr, eps, size, seed=0, steps=None, weight=1.0):
    """PGD on ``images_bgr`` that also minimises ``detector``'s excess score; uint8 images back."""
    penalty = DetectorPenalty(model, detector, weight)
    try:
        return attack(model, images_bgr, "pgd", eps=eps, size=size, seed=seed, steps=steps, extra_loss=penalty)
    finally:
        penalty.remove()
