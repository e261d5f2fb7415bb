# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The node's model: loaded and checked at configure, run on each frame at one edge, freed at cleanup.

Every failure of a frame becomes a verdict with the flag raised, so the node fails closed and never dies
on a message.
"""

import gc
import os

import numpy as np
import torch

from daain_ros.device import resolve_device
from daain_ros.errors import DaainError, ImageError, one_line
from daain_ros.pipeline import Pipeline
from daain_ros.ros import health
from daain_ros.thresholds import check_threshold, judging_threshold

#: Clean frames scoring above this quantile of the detector's clean validation scores are WARN.
WARN_QUANTILE = "0.9"


def fitted_size(width, height, fitted, detector_path):
    """0 takes the detector's fitted size; any other value must equal it."""
    for name, value, own in (("width", width, fitted[0]), ("height", height, fitted[1])):
        if value not in (0, own):
            raise DaainError(f"{detector_path}: detector fitted at {fitted[0]}x{fitted[1]}, but parameter "
                             f"{name}={value} (expected 0 or {own})")
    return tuple(fitted)


def warn_level(pipeline):
    """The clean-score quantile above which a normal frame is WARN, from the detector's calibration."""
    quantiles = pipeline.detector.metadata.get("calibration", {}).get("score_quantiles", {})
    return quantiles.get(WARN_QUANTILE)


def given_threshold(value):
    """The ``threshold`` parameter as :func:`~daain_ros.pipeline.judging_threshold` takes it.

    0 or more is a threshold, a negative one means the detector's calibrated one (None); inf and NaN raise
    ``DaainError``.
    """
    return None if check_threshold(value) < 0 else value


def apply_threshold(pipeline, value):
    """A threshold of 0 or more replaces the detector's calibrated one; a negative one restores it."""
    pipeline.threshold = judging_threshold(pipeline.detector, given_threshold(value))


def resolve_workers(settings):
    """How many frames the node judges at once: the ``workers`` parameter, its 0 resolved.

    On CUDA one frame at a time: a CUDA graph's replay reuses its buffers, and one GPU runs the frames one
    after another anyway. On a CPU two frames by default (one on a single core), each inference on every
    core: with one frame in flight it runs as fast as one worker would, and with two (the input outruns
    one) a frame's decoding and publishing overlap the other's inference and the cores stay busy
    (docs/node.md, "Workers").
    """
    cuda = settings.backend != "onnxruntime" and resolve_device(settings.device).type == "cuda"
    if cuda and settings.workers > 1:
        raise DaainError(f"parameter workers={settings.workers} on CUDA: expected 0 or 1 (a CUDA graph's replay "
                         "reuses its buffers; the GPU runs one frame at a time)")
    return settings.workers or (1 if cuda or len(os.sched_getaffinity(0)) < 2 else 2)


def load_pipeline(settings, logger):
    """Loads model and detector, checks the network size, applies the threshold and warms up.

    The warm-up frame also captures the CUDA graph or compiles the model when ``compile`` asks for it, so the
    first camera frame runs as fast as the others. Call it on a thread that runs inference.
    """
    pipeline = Pipeline.load(settings.model_path, settings.detector_path, settings.device,
                             given_threshold(settings.threshold), backend=settings.backend,
                             threads=settings.threads or None, onnx=settings.onnx_path or None,
                             compile=settings.compile)
    try:
        if pipeline.backend.name == "onnxruntime" and not settings.onnx_path:
            logger.info("exported the monitor for ONNX Runtime at configure; set onnx_path to a file of "
                        "'daain export' to start faster")
        if pipeline.model.subnormals_zeroed:
            logger.info(f"{pipeline.model.name}: {pipeline.model.subnormals_zeroed} subnormal weights set to zero "
                        "(they slow CPU kernels down)")
        width, height = fitted_size(settings.width, settings.height, pipeline.size, settings.detector_path)
        pipeline.process([np.zeros((height, width, 3), np.uint8)])
    except DaainError:
        pipeline.close()
        raise
    return pipeline


def free_memory(device):
    """Returns the memory of a model whose last reference was dropped to the system (CUDA's cache included)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def infer(pipeline, decode, msg):
    """The processing edge: (image, FrameResult, None), or (None, None, failure verdict)."""
    try:
        image = decode(msg)
        return image, pipeline.process([image])[0], None
    except ImageError as exc:
        return None, None, health.failure("input", f"cannot judge frame: {one_line(exc)}")
    except DaainError as exc:
        return None, None, health.failure("processing", f"processing failed: {one_line(exc)}")
    except Exception as exc:  # noqa: BLE001 (the one processing edge: torch/CUDA errors fail closed)
        return None, None, health.failure("processing", f"processing failed: {type(exc).__name__}: "
                                                        f"{one_line(exc)}")
