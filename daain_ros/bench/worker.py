# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""One ``daain bench`` measurement in a fresh process, so peak resident memory belongs to one variant.

Run as ``python -m daain_ros.bench.worker SPEC_JSON``; prints one JSON object. Tasks: ``memory`` (one
variant at one size and batch: peak RSS, or peak CUDA memory, and its isolated timing) and ``fit``.
"""

import json
import resource
import sys
import time
from pathlib import Path

import torch

from daain_ros.bench.variants import (DaainStep, EspnetStep, ReferenceStep, bench_frames, summary, synchronize,
                                      time_interleaved)
from daain_ros.detector.artifact import load_detector
from daain_ros.detector.fit import FitConfig, fit_detector
from daain_ros.detector.flow import FlowConfig
from daain_ros.device import resolve_device
from daain_ros.memory import process_status_mb
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import load_espnet
from daain_ros.segmentation.subnormal import flush_denormals


def peak_rss_mb():
    """This process's peak resident set so far, in MB.

    VmHWM, not ``ru_maxrss``: across ``exec`` Linux carries the parent's peak into ``ru_maxrss``, so a
    child started by a 900 MB benchmark process would report at least 900 MB.
    """
    peak = process_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss():
    """Restarts the peak (VmHWM) from the current resident set; False where the kernel cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def make_step(spec, device):
    """The variant's callable, built from the files the parent process wrote."""
    if spec["variant"] == "daain":
        return DaainStep(Pipeline.load(spec["model"], spec["detector"], str(device)))
    model = load_espnet(spec["model"], device)
    if spec["variant"] == "espnet":
        return EspnetStep(model, spec["size"])
    return ReferenceStep(model, load_detector(spec["detector"], model))


def memory(spec):
    """Peak memory use (and isolated timing) of one variant over ``iterations`` batches after ``warmup``."""
    device = resolve_device(spec["device"])
    step = make_step(spec, device)
    batch = spec["batch"]
    frames, _ = bench_frames(batch * (spec["warmup"] + spec["iterations"]), spec["size"], spec["footage"])
    batches = [frames[i:i + batch] for i in range(0, len(frames), batch)]
    base_mb = peak_rss_mb()
    loaded_mb = process_status_mb("VmRSS") if reset_peak_rss() else None  # from here the peak is the frames' own
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base_device_mb = torch.cuda.memory_allocated(device) / (1 << 20)
    wall, cpu = time_interleaved({"step": step}, batches, spec["warmup"], device)
    result = {**summary(wall["step"], batch, cpu["step"]), "peak_mb": max(base_mb, peak_rss_mb()),
              "base_mb": base_mb, "loaded_mb": loaded_mb,
              "frame_peak_mb": None if loaded_mb is None else peak_rss_mb(),
              "memory": "peak resident set of the process (VmHWM), over its whole life and over the frames "
                        "alone (frame_peak_mb: the peak restarted after loading, via /proc/self/clear_refs)"}
    if device.type == "cuda":
        peak_device_mb = torch.cuda.max_memory_allocated(device) / (1 << 20)
        result.update(host_peak_mb=result["peak_mb"], base_mb=base_device_mb, peak_mb=peak_device_mb,
                      loaded_mb=base_device_mb, frame_peak_mb=peak_device_mb,
                      memory="peak CUDA memory allocated by torch (max_memory_allocated)")
    return result


def fit(spec):
    """Seconds to fit a detector on ``frames`` frames with the given settings, and per 100 frames."""
    model = load_espnet(spec["model"], resolve_device(spec["device"]))
    frames, source = bench_frames(spec["frames"], spec["size"], spec["footage"])
    settings = dict(spec["config"])
    config = FitConfig(**{**settings, "size": tuple(spec["size"]), "flow": FlowConfig(**settings.get("flow", {}))})
    start = time.perf_counter()
    detector = fit_detector(model, frames, config, progress=False)
    seconds = time.perf_counter() - start
    return {"frames": len(frames), "source": source, "seconds": seconds,
            "seconds_per_100_frames": seconds * 100 / len(frames), "peak_mb": peak_rss_mb(),
            "epochs_run": detector.metadata["training"]["epochs_run"], "config": config.public_dict()}


TASKS = {"memory": memory, "fit": fit}


def main(argv=None):
    flush_denormals()
    spec = json.loads((argv or sys.argv[1:])[0])
    torch.set_num_threads(spec["threads"])
    print(json.dumps(TASKS[spec["task"]](spec)), flush=True)


if __name__ == "__main__":
    main()
