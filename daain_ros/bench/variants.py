# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What ``daain bench`` times: the ESPNet floor, the DAAIN pipeline and the reference's gather, on the same frames.

Each variant is a callable on a batch of BGR uint8 frames that returns the labels and scores (device tensors,
or host arrays on ONNX Runtime), so the timings include preprocessing (the uint8 to float conversion and
normalisation, and the resize when the frames come at camera size) and nothing the caller does with the
results. Each backend has its own floor: ESPNet alone in eager PyTorch (``EspnetStep``), replayed as a CUDA
graph or compiled with ``torch.compile`` (``AcceleratedEspnetStep``) and exported to ONNX (``OnnxEspnetStep``).
"""

import time
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import stats
from torch import nn

from daain_ros.accelerate import accelerate
from daain_ros.detector.monitor import gathered_network
from daain_ros.memory import meminfo_mb
from daain_ros.segmentation.preprocess import preprocess

#: Measured at 512x256 batch 1 (official p2q8, 2026-11): 8.7 GB peak for a 2.9 GB activation space, about 3x.
REFERENCE_PEAK_FACTOR = 3.0
MIB = 1 << 20
CAMERA_SIZE = (960, 540)  # the drive footage's: what a camera-size frame is when none is given


class EspnetStep:
    """The floor: preprocessing, ESPNet forward and argmax, on a model with no hooks."""

    def __init__(self, model, size):
        self.model = model
        self.size = tuple(size)
        self.device = model.device

    def __call__(self, images):
        with torch.inference_mode():
            return self.model.logits(preprocess(images, self.size, self.device)).argmax(1).byte()


class AcceleratedEspnetStep:
    """The floor of a ``compile`` mode: preprocessing, then ESPNet and argmax replayed as a CUDA graph or compiled.

    ``mode`` is ``cuda-graph`` (the pipeline's CUDA default) or ``torch-compile``
    (:func:`daain_ros.accelerate.accelerate`); a compiled step compiles at its first batch.
    """

    def __init__(self, model, size, mode):
        from daain_ros.deploy.export import Segmenter

        self.network = accelerate(Segmenter(model).eval(), mode, model.device)
        self.size = tuple(size)
        self.device = model.device

    def __call__(self, images):
        return self.network(preprocess(images, self.size, self.device))


class OnnxEspnetStep:
    """The ONNX Runtime floor: preprocessing, then ESPNet and argmax exported alone, in an ONNX Runtime session."""

    def __init__(self, model, size, threads=None):
        from daain_ros.deploy.export import INPUT, espnet_onnx
        from daain_ros.deploy.onnxruntime_backend import open_session

        self.session = open_session(espnet_onnx(model, size).SerializeToString(), threads)
        self.size = tuple(size)
        self.input = INPUT

    def __call__(self, images):
        return self.session.run(None, {self.input: preprocess(images, self.size).contiguous().numpy()})


class GatheredStep:
    """ESPNet with the key's gathers in its graph and no detector: the graph monitor's cost without the flow and head.

    Timed beside the graph, it splits the graph's overhead into what reading the samples costs and what scoring
    them costs.
    """

    def __init__(self, model, key):
        self.network = gathered_network(model, key)
        self.size = key.size
        self.device = model.device

    def __call__(self, images):
        with torch.inference_mode():
            logits, activations = self.network(preprocess(images, self.size, self.device))
            return logits.argmax(1).byte(), activations


class DaainStep:
    """The production path: ``Pipeline.infer`` on the pipeline's backend (ESPNet, gathers, flow and head)."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def __call__(self, images):
        return self.pipeline.infer(images)


class ReferenceStep:
    """The reference DAAIN's gather.

    Every hooked map upsampled (nearest) to the input size and concatenated into the activation space, which is then
    indexed by the key, then the same detector.

    Run by the benchmark only, on its own model instance: it needs about 2.7 GiB per 512x256 frame.
    """

    def __init__(self, model, detector):
        self.model = model
        self.detector = detector
        self.size = detector.key.size
        self.device = model.device
        self._outputs = {}
        modules = dict(model.net.named_modules())
        self._names = [layer.name for layer in detector.key.layers]
        self._handles = [modules[name].register_forward_hook(self._keep(name)) for name in self._names]
        self._index = torch.as_tensor(detector.key.indices.T, device=self.device)

    def _keep(self, name):
        def hook(_module, _inputs, output):
            self._outputs[name] = output
        return hook

    def activations(self, x):
        """(logits, N x K activations) through the full activation space."""
        self._outputs.clear()
        try:
            logits = self.model.logits(x)
            height, width = x.shape[-2:]
            space = torch.cat([nn.functional.interpolate(self._outputs[name], size=(height, width), mode="nearest")
                               for name in self._names], 1)
        finally:
            self._outputs.clear()
        channel, y, x_ = self._index
        return logits, space[:, channel, y, x_]

    def __call__(self, images):
        with torch.inference_mode():
            logits, activations = self.activations(preprocess(images, self.size, self.device))
            return logits.argmax(1).byte(), self.detector(activations)

    def remove(self):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def reference_estimate_mb(total_channels, size, batch):
    """(activation space MB, estimated peak MB) of the reference's gather for one batch."""
    space = batch * total_channels * size[0] * size[1] * 4 / MIB
    return space, space * REFERENCE_PEAK_FACTOR


def available_mb(device):
    """Memory a new allocation can use: MemAvailable on the host, free memory on a CUDA device."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / MIB
    host_mb = meminfo_mb("MemAvailable")
    return float("inf") if host_mb is None else host_mb


def procedural_frames(count, size, seed=0):
    """Seeded smooth colour frames (gradients, blobs and noise) for when the footage is absent."""
    rng = np.random.default_rng(seed)
    width, height = size
    frames = []
    for _ in range(count):
        coarse = rng.uniform(0, 255, (max(2, height // 32), max(2, width // 32), 3)).astype(np.float32)
        frame = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        frame += rng.normal(0, 8, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def bench_frames(count, size, footage=None, seed=0):
    """``count`` BGR frames at network ``size``: the first frames of the ``footage`` video, else procedural ones."""
    frames, source = camera_frames(count, footage, size, seed)
    return [cv2.resize(f, tuple(size), interpolation=cv2.INTER_AREA) for f in frames], source


def camera_frames(count, footage=None, size=CAMERA_SIZE, seed=0):
    """``count`` BGR frames as the camera gives them: the ``footage`` video's, else procedural ones at ``size``."""
    if footage is not None:
        from daain_ros.io.sources import open_source, parse_frames
        frames = [f.image for f in open_source(str(footage), parse_frames(f"0:{count}"))]
        if frames:
            return (frames * (count // len(frames) + 1))[:count], Path(footage).name
    return procedural_frames(count, size, seed), f"procedural (seed {seed})"


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(steps, batches, warmup, device, block=1):
    """Runs every step on every batch, ``block`` batches in a row each, alternating which goes first.

    Per step (wall s, CPU s) lists, in batch order. Interleaving exposes every variant to the same machine
    noise. With ``block`` 1 each batch follows another variant's, so each finds the caches holding that
    variant's weights and maps; with a larger block most batches follow one of the same variant, as every
    frame does in a node that runs one model. The first ``warmup`` batches are run but not recorded.
    """
    names = list(steps)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for first in range(0, len(batches), block):
        for name in names if first // block % 2 == 0 else names[::-1]:
            for i in range(first, min(first + block, len(batches))):
                synchronize(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                steps[name](batches[i])
                synchronize(device)
                if i >= warmup:
                    wall[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def ratio_interval(numerators, denominators, level=0.95, resamples=2000, seed=0):
    """[low, high]: a seeded percentile-bootstrap interval of median(numerators) / median(denominators).

    The two lists are times of two variants on the same batches, timed interleaved, so the i-th times shared
    the machine's state: the pairs are resampled together. The interval shows whether a ratio from one run
    tells a goal apart (on a 2-core VM, runs of 60 batches moved ratios by a few hundredths). None from a
    single pair, which has no spread to resample.
    """
    if len(numerators) < 2:
        return None
    result = stats.bootstrap((np.asarray(numerators), np.asarray(denominators)), _ratio_of_medians, paired=True,
                             vectorized=True, n_resamples=resamples, confidence_level=level, method="percentile",
                             rng=np.random.default_rng(seed))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def _ratio_of_medians(numerators, denominators, axis=-1):
    return np.median(numerators, axis=axis) / np.median(denominators, axis=axis)


def summary(seconds, batch, cpu_seconds=None):
    """median_ms, p90_ms (and CPU-time median, per-image median) of a list of seconds."""
    ms = np.asarray(seconds) * 1e3
    result = {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
              "min_ms": float(ms.min()), "per_image_ms": float(np.median(ms)) / batch, "iterations": int(len(ms)),
              "frames": int(len(ms)) * batch}
    if cpu_seconds is not None:
        result["cpu_median_ms"] = float(np.median(cpu_seconds) * 1e3)
    return result
