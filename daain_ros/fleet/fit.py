# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain fit --address``: a fit's activations extracted by Ray workers, the flow trained in this process.

The single-process fit (:func:`daain_ros.detector.fit.fit_detector`) reads every frame, splits them in
time (the last fifth validates), adds jittered copies and runs the monitored ESPNet over them in batches.
Here the same happens in three steps, so the result is the same detector:

1. workers list the frames each source gives (their sizes: a jitter is drawn from the size alone);
2. this process draws every jitter in the single-process order (:func:`~daain_ros.detector.augment.augment_plan`)
   and cuts the frames into stretches that start on its batch boundaries;
3. workers read their stretches, jitter and extract; the stretches are put back in order and
   :func:`~daain_ros.detector.fit.fit_on_activations` trains and calibrates.

Training stays in one process: a frame's activations are a few thousand floats (2,000 dims: 8 kB), so
100,000 frames with their copies are a few GB at most on the host, and the flow trains on them in
minutes; data-parallel training (torch DDP) would pay off only for a flow that outgrows one GPU.
"""

import math

import numpy as np
import torch
from tqdm import tqdm

from daain_ros.detector.augment import augment_plan
from daain_ros.detector.fit import fit_key, fit_on_activations, split_count
from daain_ros.device import resolve_device
from daain_ros.errors import FleetError
from daain_ros.fleet.cluster import LOCAL, connect
from daain_ros.fleet.pool import WorkerPool, WorkerSpec
from daain_ros.fleet.worker import ActivationWorker, ExtractJob, ScanJob
from daain_ros.io.sources import check_every
from daain_ros.segmentation.espnet import load_espnet

TRAIN, VALID = "train", "valid"
#: Stretches per worker and role: enough to even out workers, few enough to keep scheduling cheap.
STRETCHES_PER_WORKER = 4


def _scan(pool, sources, frames, every):
    """[(spec, index, (height, width))] of every fit frame, in the single-process order."""
    jobs = [ScanJob(spec, (frames.start, frames.stop) if frames else (None, None), every) for spec in sources]
    found = {}
    for outcome in pool.results(jobs):
        if outcome.failure:
            raise FleetError(f"{outcome.item.spec}: {outcome.failure}")
        found[outcome.item.spec] = outcome.value
    return [(spec, index, (height, width)) for spec in sources for index, height, width in found[spec]]


def _aligned_size(total, workers, rows, batch_size):
    """Frames per stretch: a multiple of the frames that fill whole batches, about ``total / (4 workers)``."""
    unit = batch_size // math.gcd(batch_size, rows)
    wanted = max(1, math.ceil(total / (STRETCHES_PER_WORKER * workers)))
    return unit * math.ceil(wanted / unit)


def _pieces(frames, jitters):
    """Consecutive frames of one source grouped: (spec, indices, jitters) per group."""
    pieces = []
    for (spec, index, _), frame_jitters in zip(frames, jitters):
        if pieces and pieces[-1][0] == spec:
            pieces[-1][1].append(index)
            pieces[-1][2].append(frame_jitters)
        else:
            pieces.append((spec, [index], [frame_jitters]))
    return tuple((spec, tuple(indices), tuple(js)) for spec, indices, js in pieces)


def _jobs(frames, config, workers):
    """The extraction jobs of both roles, each a stretch starting on a batch boundary of its role."""
    n_train = split_count(len(frames), config)
    shapes = [shape for _, _, shape in frames]
    roles = ((TRAIN, frames[:n_train], augment_plan(shapes[:n_train], config.augment_copies, config.seed)),
             (VALID, frames[n_train:], augment_plan(shapes[n_train:], config.augment_copies, config.seed + 1)))
    jobs = []
    for role, role_frames, plan in roles:
        size = _aligned_size(len(role_frames), workers, config.augment_copies + 1, config.batch_size)
        for number, start in enumerate(range(0, len(role_frames), size)):
            stretch = _pieces(role_frames[start:start + size], plan[start:start + size])
            jobs.append(ExtractJob(role, number, stretch))
    return jobs


def _extract(pool, jobs, rows, progress):
    parts = {}
    total = sum(len(indices) for job in jobs for _, indices, _ in job.pieces)
    with tqdm(total=total, desc="fit activations (Ray)", unit="frame", disable=not progress) as bar:
        for outcome in pool.results(jobs):
            if outcome.failure:
                raise FleetError(f"fit frames {outcome.item.role} stretch {outcome.item.number}: {outcome.failure}")
            frames = sum(len(indices) for _, indices, _ in outcome.item.pieces)
            if len(outcome.value) != frames * rows:
                raise FleetError(f"fit frames {outcome.item.role} stretch {outcome.item.number}: "
                                 f"{len(outcome.value)} activation rows, expected {frames * rows} (did a source "
                                 "change while it was read?)")
            parts[(outcome.item.role, outcome.item.number)] = outcome.value
            bar.update(frames)
    return {role: torch.from_numpy(np.concatenate([parts[k] for k in sorted(parts) if k[0] == role]))
            for role in (TRAIN, VALID)}


def parallel_activations(model_path, key, sources, config, pool, frames=None, every=1, progress=True):
    """Extract, on ``pool``'s workers, the activations a single-process fit extracts from ``sources``.

    The frames are those :func:`~daain_ros.detector.fit.fit_detector` would get: each source cut to
    ``frames``, every ``every``-th frame, in the order of ``sources``.

    :returns: (train, valid) float32 CPU tensors, frame after frame, each frame followed by its copies.
    """
    found = _scan(pool, sources, frames, every)
    activations = _extract(pool, _jobs(found, config, pool.workers), config.augment_copies + 1, progress)
    return activations[TRAIN], activations[VALID]


def activation_pool(model_path, key, config, workers, threads_per_worker=1, gpus_per_worker=0.0, device="auto"):
    """A :class:`WorkerPool` of :class:`ActivationWorker` (ESPNet with ``key`` hooked, loaded once each)."""
    spec = WorkerSpec(ActivationWorker, (str(model_path), key, device, threads_per_worker, config.batch_size),
                      num_cpus=threads_per_worker, num_gpus=gpus_per_worker)
    return WorkerPool(spec, workers)


def fit_on_ray(model_path, sources, config, *, frames=None, every=1, address=LOCAL, workers=None,
               threads_per_worker=1, gpus_per_worker=0.0, device="auto", progress=True):
    """Fits a detector for the checkpoint at ``model_path`` with its activations extracted on Ray.

    :param workers: actors to start; default what the cluster's CPUs (or GPUs) hold.
    :returns: (detector, model, workers): the fitted detector, the ESPNet it was fitted for (to save it with)
        and the workers used.
    :raises FleetError: for the supervised head (its anomalies are made from all fit frames at once), or a
        source or stretch that failed.
    """
    if config.head == "supervised":
        raise FleetError("--head supervised learns from anomalies generated from the fit frames in one process: "
                         "fit it without --address")
    check_every(every)
    model = load_espnet(model_path, resolve_device(device))
    key = fit_key(model, config)
    local_cpus = None if workers is None or address != LOCAL else workers * threads_per_worker
    with connect(address, num_cpus=local_cpus) as cluster:
        count = cluster.worker_count(threads_per_worker, gpus_per_worker, workers)
        with activation_pool(model_path, key, config, count, threads_per_worker, gpus_per_worker, device) as pool:
            train, valid = parallel_activations(model_path, key, sources, config, pool, frames, every, progress)
    detector = fit_on_activations(key, config, train.to(model.device), valid.to(model.device), progress)
    return detector, model, {"address": address, "workers": count, "cluster": cluster.to_dict()}
