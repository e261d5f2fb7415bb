# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Segmentation plus detector for whole frames: what the node, ``daain score`` and bag replay run."""

import math
from dataclasses import dataclass

import numpy as np
import torch

from daain_ros.detector.artifact import load_detector
from daain_ros.detector.monitor import ActivationMonitor
from daain_ros.device import resolve_device
from daain_ros.segmentation.espnet import load_espnet
from daain_ros.segmentation.preprocess import preprocess


@dataclass(frozen=True)
class FrameResult:
    """One frame's verdict; a non-finite score counts as anomalous (fail closed)."""

    labels: np.ndarray
    score: float
    threshold: float

    @property
    def anomalous(self):
        return not math.isfinite(self.score) or self.score > self.threshold


class Pipeline:
    """ESPNet with the detector's hooks: one forward gives the segmentation and the anomaly score."""

    def __init__(self, model, detector, threshold=None):
        self.model = model
        self.detector = detector
        self.monitor = ActivationMonitor(model, detector.key)
        self.threshold = float(detector.threshold) if threshold is None else float(threshold)

    @classmethod
    def load(cls, model_path, detector_path, device="auto", threshold=None):
        """Loads both files; a missing or mismatched one raises a one-line typed error naming it."""
        model = load_espnet(model_path, resolve_device(device))
        return cls(model, load_detector(detector_path, model), threshold)

    @property
    def size(self):
        return self.detector.key.size

    @property
    def device(self):
        return self.model.device

    def infer(self, images_bgr):
        """Device tensors for a batch of BGR uint8 images of any size: (train ids N x H x W, scores N)."""
        with torch.inference_mode():
            logits, activations = self.monitor(preprocess(images_bgr, self.size, self.device))
            return logits.argmax(1).byte(), self.detector(activations)

    def close(self):
        """Detaches the detector's hooks; the model then runs unobserved."""
        self.monitor.remove()

    def process(self, images_bgr):
        """A ``FrameResult`` per image (one transfer to the host per batch)."""
        labels, scores = self.infer(images_bgr)
        labels, scores = labels.cpu().numpy(), scores.double().cpu().numpy()
        return [FrameResult(lab, float(score), self.threshold) for lab, score in zip(labels, scores)]
