# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The Ray actors of a fleet run: a bag evaluator and an activation extractor, each loading its model once.

Both are plain classes driven by :class:`daain_ros.fleet.pool.WorkerPool`; they run the core's own
functions (:func:`~daain_ros.evaluation.bag_replay.evaluate_bag`,
:func:`~daain_ros.detector.daain.extract_activations`), so a bag evaluated here gives the outputs
``daain bag evaluate`` gives, and activations extracted here equal those of a fit in one process.
"""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daain_ros.errors import DaainError, one_line
from daain_ros.fleet.pool import PoolWorker


def _set_up(threads):
    """What every entry point of the package does, and the worker's share of the node's CPUs.

    torch loads here, in the worker: the driver imports this module for the actor classes only.
    """
    import torch

    from daain_ros.segmentation.subnormal import flush_denormals

    flush_denormals()
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class BagJob:
    """One bag to evaluate into ``out`` with ``daain bag evaluate``'s options (topic, labels, debounce, batch)."""

    bag: str
    out: str
    options: tuple = ()


class BagWorker(PoolWorker):
    """Loads the pipeline once, then evaluates bag after bag with it."""

    def __init__(self, model, detector, device, threshold, threads, argv):
        _set_up(threads)
        from daain_ros.pipeline import Pipeline

        self.model, self.detector, self.argv, self.threads = str(model), str(detector), list(argv), threads
        self.pipeline, started = None, time.perf_counter()
        try:
            self.pipeline = Pipeline.load(model, detector, device, threshold)
        except DaainError as exc:
            self.error = one_line(exc)
        self.load_s = time.perf_counter() - started

    def describe(self):
        """The worker's device, threads and how long loading the pipeline took."""
        device = None if self.pipeline is None else str(self.pipeline.device)
        return {"device": device, "threads": self.threads, "load_s": round(self.load_s, 3)}

    def work(self, job):
        """Evaluates one bag into a clean ``job.out``; a bag the core cannot read is a result, not a crash."""
        from daain_ros.evaluation.bag_replay import UnreadableBagError, evaluate_bag

        out = Path(job.out)
        if out.exists():  # what a killed attempt or an unfinished earlier run left
            shutil.rmtree(out)
        started = time.perf_counter()
        result = {"summary": None, "error": None}
        try:
            result["summary"] = evaluate_bag(job.bag, detector=self.detector, model=self.model, out=out,
                                             pipeline=self.pipeline, argv=self.argv, progress=False,
                                             **dict(job.options))
        except UnreadableBagError as exc:
            result.update(summary=exc.summary, error=one_line(exc))
        except DaainError as exc:
            result["error"] = one_line(exc)
        result["wall_s"] = time.perf_counter() - started
        return result


@dataclass(frozen=True)
class ScanJob:
    """Which frames of one source a fit takes: its range, and every ``every``-th frame of it."""

    spec: str
    frames: tuple = (None, None)
    every: int = 1


@dataclass(frozen=True)
class ExtractJob:
    """A stretch of the fit frames: ``pieces`` of (source spec, frame indices, each frame's jitters)."""

    role: str
    number: int
    pieces: tuple


def scan_frames(job):
    """(index, height, width) of each frame of the job's source that the fit takes, in order."""
    from daain_ros.io.sources import every_kth, open_source

    source = open_source(job.spec, slice(*job.frames))
    return [(frame.index, *frame.image.shape[:2]) for frame in every_kth(source, job.every)]


class ActivationWorker(PoolWorker):
    """Loads ESPNet with the fit's key hooked once, then scans sources and extracts stretches of frames.

    A stretch starts on a batch boundary of the single-process fit and is cut into the same batches, so its
    activations are the ones that fit computes, to the bit on the same kernels.
    """

    def __init__(self, model, key, device, threads, batch_size):
        _set_up(threads)
        from daain_ros.detector.monitor import ActivationMonitor
        from daain_ros.device import resolve_device
        from daain_ros.segmentation.espnet import load_espnet

        self.key, self.batch_size, self.threads, self.monitor = key, batch_size, threads, None
        try:
            self.monitor = ActivationMonitor(load_espnet(model, resolve_device(device)), key)
        except DaainError as exc:
            self.error = one_line(exc)

    def describe(self):
        """The worker's device and threads."""
        device = None if self.monitor is None else str(self.monitor.model.device)
        return {"device": device, "threads": self.threads}

    def work(self, job):
        """Frame shapes for a :class:`ScanJob`; an N x K float32 array of activations for an :class:`ExtractJob`."""
        if isinstance(job, ScanJob):
            return scan_frames(job)
        return self._extract(job)

    def _images(self, job):
        from daain_ros.detector.augment import augmented
        from daain_ros.io.sources import open_source

        for spec, indices, jitters in job.pieces:
            wanted = dict(zip(indices, jitters))
            for frame in open_source(spec, slice(min(indices), max(indices) + 1)):
                if frame.index in wanted:
                    yield from augmented(frame.image, wanted[frame.index])

    def _extract(self, job):
        from daain_ros.detector.daain import extract_activations

        parts, images, flush = [], [], 4 * self.batch_size  # whole batches only, so none is cut differently
        for image in self._images(job):
            images.append(image)
            if len(images) == flush:
                parts.append(extract_activations(self.monitor, images, self.key.size, self.batch_size, False)[0])
                images = []
        if images:
            parts.append(extract_activations(self.monitor, images, self.key.size, self.batch_size, False)[0])
        return np.concatenate([part.cpu().numpy() for part in parts]).astype(np.float32, copy=False)
