# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Segmentation plus detector for whole frames: what the node, ``daain score`` and bag replay run.

The monitor runs on a backend chosen by name (:mod:`daain_ros.deploy.backends`): ``torch``, the one-graph
monitor in PyTorch (the default), or ``onnxruntime``, its ONNX export on ONNX Runtime.
"""

import math
from dataclasses import dataclass

import numpy as np

from daain_ros.deploy.backends import TorchBackend, check_backend, load_backend, resolve_backend
from daain_ros.detector.artifact import load_detector
from daain_ros.device import resolve_device
from daain_ros.errors import DaainError
from daain_ros.segmentation.espnet import load_espnet
from daain_ros.segmentation.preprocess import preprocess
from daain_ros.thresholds import judging_threshold


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
    """ESPNet monitored by the detector on one backend: one forward gives the segmentation and the anomaly score."""

    def __init__(self, model, detector, threshold=None, backend=None):
        self.model = model
        self.detector = detector
        self.backend = TorchBackend(model, detector) if backend is None else backend
        self.threshold = judging_threshold(detector, threshold)

    @classmethod
    def load(cls, model_path, detector_path, device="auto", threshold=None, backend="torch", threads=None, *,
             onnx=None, spin=False, compile="auto"):  # noqa: A002 (the option's name)
        """Loads both files and the backend; a missing or mismatched one raises a one-line typed error naming it.

        :param device: ``auto`` takes CUDA when present, except for ``onnxruntime``, which runs on the CPU.
        :param backend: ``torch``, ``onnxruntime`` (:func:`daain_ros.deploy.backends.load_backend`) or ``auto``:
            ``onnxruntime`` when the device is the CPU, ``torch`` on CUDA.
        :param threads: torch's intra-op threads and ONNX Runtime's (None: each library's default).
        :param onnx: for ``onnxruntime``, a file of ``daain export`` bound to these two files (default: the
            graph is exported in memory, which takes seconds).
        :param spin: let ONNX Runtime's idle threads spin (faster on an idle machine, costly under contention).
        :param compile: ``auto`` (a CUDA graph on CUDA), ``off``, ``cuda-graph`` or ``torch-compile``, for ``torch``.
        """
        check_backend(backend, threads)
        if backend == "onnxruntime" and device == "auto":
            device = "cpu"
        device = resolve_device(device)
        backend = resolve_backend(backend, device)
        model = load_espnet(model_path, device)
        detector = load_detector(detector_path, model)
        return cls(model, detector, threshold, load_backend(backend, model, detector, detector_path, threads,
                                                            onnx, spin, compile))

    @property
    def size(self):
        return self.detector.key.size

    @property
    def device(self):
        return self.model.device

    def infer(self, images_bgr):
        """Tensors for a batch of BGR uint8 images of any size: (train ids N x H x W, scores N).

        On the model's device with ``torch``, on the host with ``onnxruntime``.
        """
        if self.backend is None:
            raise DaainError("pipeline used after close(): load it again")
        return self.backend(preprocess(images_bgr, self.size, self.device))

    def close(self):
        """Releases the backend (the graph, or the ONNX Runtime session and its memory)."""
        self.backend = None

    def process(self, images_bgr):
        """A ``FrameResult`` per image (one transfer to the host per batch)."""
        labels, scores = self.infer(images_bgr)
        scores = scores.double().to("cpu", non_blocking=True)  # queued before the labels' copy, which waits for both
        labels = labels.cpu().numpy()
        return [FrameResult(lab, float(score), self.threshold) for lab, score in zip(labels, scores.numpy())]
