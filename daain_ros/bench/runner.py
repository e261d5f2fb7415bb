# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bench``: what DAAIN costs on top of ESPNet, against the reference's gather, in the node and to fit.

ESPNet alone and the DAAIN pipeline, on each backend (:mod:`daain_ros.bench.backends`), are timed in one
process, frame by frame in alternation, so machine noise hits them alike, at the network size and once on
whole camera-size frames; peak memory is measured in a fresh process per variant (``bench_worker``), and
the node in its own process over DDS (``bench_node``). Without ``--detector`` every size gets a fresh
sampling key (seed 0, all leaf layers, 2,000 dims) and an unfitted detector of the default flow
architecture: the same computation as a fitted one, with other values.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from daain_ros.bench.backends import backend_steps, floor_of, time_backends
from daain_ros.bench.variants import available_mb, bench_frames, camera_frames, reference_estimate_mb
from daain_ros.detector.artifact import load_detector, read_metadata, save_detector
from daain_ros.detector.daain import DaainDetector
from daain_ros.detector.fit import FitConfig
from daain_ros.detector.flow import FlowConfig
from daain_ros.detector.monitor import probe_layers
from daain_ros.detector.sampling_key import SamplingKey
from daain_ros.errors import DaainError, one_line
from daain_ros.evaluation.metrics import ratio
from daain_ros.provenance import machine_info, provenance
from daain_ros.segmentation.espnet import load_espnet
from daain_ros.segmentation.network_size import check_network_size

SIZES = ((512, 256), (1024, 512))
BATCHES = (1, 8)
HEADLINE = ("512x256", "batch1", "cpu")
KEY_SEED = 0
FRESH_DIMS = 2000
#: A fresh detector's threshold: a number, as a node and a pipeline require, but no calibration (the benchmark
#: times the verdicts, it does not read them).
FRESH_THRESHOLD = 0.0
FULL_FIT = {"key_seed": KEY_SEED}
QUICK_FIT = {"key_seed": KEY_SEED, "augment_copies": 1, "flow": {"epochs": 2}}
SECTIONS = ("reference", "node", "contention", "fit", "onnxruntime", "compile")
EMPTY = {"median_ms": None, "p90_ms": None, "peak_mb": None}  # a leaf that was skipped or failed
MEMORY_KEYS = ("peak_mb", "base_mb", "loaded_mb", "frame_peak_mb", "memory")


@dataclass(frozen=True)
class BenchConfig:
    """What to run; ``None`` counts take the full or quick defaults."""

    model: Path
    detector: Path = None
    footage: str = None
    quick: bool = False
    sizes: tuple = SIZES
    batches: tuple = BATCHES
    devices: tuple = None
    iterations: int = None
    threads: int = None
    dims: int = FRESH_DIMS
    skip: tuple = field(default_factory=tuple)
    profile: bool = False
    block: int = 1

    @property
    def timed(self):
        return self.iterations or (3 if self.quick else 30)

    @property
    def memory_runs(self):
        """(timed, warm-up) batches of a memory worker: the peak comes with the first forward."""
        return (1, 0) if self.quick else (2, 1)

    @property
    def warmup(self):
        return 1 if self.quick else 5

    @property
    def compile_skipped(self):
        """Why the ``torch.compile`` variants are left out, or None when they run (a C++ compiler is needed)."""
        if "compile" in self.skip or self.quick:
            return "--skip compile" if "compile" in self.skip else "quick mode"
        if shutil.which("g++") is None:
            return "no C++ compiler (g++) for torch.compile's CPU code"
        return None

    @property
    def reference_iterations(self):
        return min(self.timed, 10)

    def cases(self):
        """(size, batch) pairs; quick mode leaves out the largest size at the largest batch."""
        pairs = [(tuple(size), batch) for size in self.sizes for batch in self.batches]
        if self.quick and len(pairs) > 2:
            pairs.remove((tuple(max(self.sizes, key=lambda s: s[0] * s[1])), max(self.batches)))
        return pairs


def size_label(size):
    return f"{size[0]}x{size[1]}"


def fresh_detector(model, size, template=None, dims=FRESH_DIMS):
    """A valid unfitted detector at ``size``.

    A seeded key over ``template``'s layers and dims, its flow architecture and its fitted head (the head reads only
    the flow's output, so it carries over to any size); without a template, every leaf layer, ``dims`` and the
    default flow and head.
    """
    if template is None:
        key = SamplingKey.generate(probe_layers(model, size, device=model.device), size, KEY_SEED, target_dims=dims)
        return DaainDetector(key, FitConfig.head, FlowConfig(), FRESH_THRESHOLD).eval()
    names = [layer.name for layer in template.key.layers]
    key = SamplingKey.generate(probe_layers(model, size, names, model.device), size, KEY_SEED,
                               target_dims=template.key.dims)
    detector = DaainDetector(key, template.head.kind, template.flow_config, FRESH_THRESHOLD)
    detector.head.load_state_dict(template.head.state_dict())
    return detector.eval()


def prepare_detectors(config, workdir):
    """Detector directory and its description per size: the given one at its fitted size, fresh elsewhere."""
    model = load_espnet(config.model)
    given, template = None, None
    if config.detector is not None:
        given = tuple(read_metadata(config.detector)["input_size"])
        template = load_detector(config.detector, model)
    detectors = {}
    for size in config.sizes:
        if size == given:
            detectors[size] = (Path(config.detector), f"fitted detector {config.detector}")
            continue
        detector = fresh_detector(model, size, template, config.dims)
        path = save_detector(detector, Path(workdir) / size_label(size), model)
        detectors[size] = (path, f"fresh key (seed {KEY_SEED}, {detector.key.dims} dims), unfitted: "
                                 "the same computation as a fitted detector")
    return detectors


def run_worker(spec, timeout=1800):
    """Runs one ``bench_worker`` task in a fresh process; its JSON, or an error record."""
    try:
        out = subprocess.run([sys.executable, "-m", "daain_ros.bench.worker", json.dumps(spec)],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        if out.returncode < 0:
            last = f"killed by signal {-out.returncode} (out of memory?)"
        return {"error": last}
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_pair(config, size, batch, device, steps):
    """Interleaved timing of every backend's variants on the same batches, in this process.

    Returns ESPNet alone and the DAAIN pipeline (its default backend, the torch graph) as the sections
    ``espnet`` and ``daain`` have them, and the backend leaf. ESPNet alone is the graph's floor: eager on a CPU,
    replayed as a CUDA graph on CUDA, as the pipeline runs there.
    """
    frames, _ = bench_frames(batch * (config.warmup + config.timed), size, config.footage)
    backends, wall, cpu = time_backends(steps, frames, batch, config.warmup, device, config.block)
    floor = floor_of("graph", backends)
    paired = np.asarray(wall["graph"]) / np.asarray(wall[floor])
    return ({**backends[floor], "variant": floor},
            {**backends["graph"],
             "overhead": float(np.median(wall["graph"]) / np.median(wall[floor])),
             "overhead_cpu_time": float(np.median(cpu["graph"]) / np.median(cpu[floor])),
             "overhead_paired": float(np.median(paired))}, backends)


def time_frame(config, steps, device):
    """The whole frame at batch 1: camera-size frames, so each variant's time includes the resize."""
    frames, source = camera_frames(config.warmup + config.timed, config.footage)
    leaf, _, _ = time_backends(steps, frames, 1, config.warmup, device, config.block)
    height, width = frames[0].shape[:2]
    return {"camera": f"{width}x{height}", "frames": source, **leaf}


def memory_spec(config, variant, size, batch, device, detector_dir, runs=None):
    iterations, warmup = runs or config.memory_runs
    return {"task": "memory", "variant": variant, "model": str(Path(config.model).resolve()), "footage": config.footage,
            "detector": str(Path(detector_dir).resolve()), "size": list(size), "batch": batch,
            "device": str(device), "iterations": iterations, "warmup": warmup, "threads": config.threads}


def with_memory(leaf, measured):
    """Adds a worker's memory figures (and its isolated timing) to an interleaved timing leaf."""
    if "error" in measured:
        return {**leaf, "peak_mb": None, "memory_error": measured["error"]}
    return {**leaf, **{k: measured.get(k) for k in MEMORY_KEYS}, "isolated_median_ms": measured["median_ms"]}


def frame_mb(leaf):
    """Memory one batch costs above the loaded process (peak over the frames minus RSS after loading)."""
    if leaf.get("frame_peak_mb") is None or leaf.get("loaded_mb") is None:
        return None
    return leaf["frame_peak_mb"] - leaf["loaded_mb"]


def reference_leaf(config, size, batch, device, detector_dir, espnet, daain):
    """The reference's gather in its own process, or why it was skipped (with its estimated peak)."""
    channels = sum(channels for _name, channels, *_ in read_metadata(detector_dir)["layers"])
    space_mb, estimate_mb = reference_estimate_mb(channels, size, batch)
    record = {**EMPTY, "space_mb": space_mb, "estimated_peak_mb": estimate_mb, "channels": channels}
    free_mb = available_mb(device)
    if "reference" in config.skip or config.quick:
        return {**record, "skipped": "quick mode" if config.quick else "--skip reference"}
    if estimate_mb > 0.8 * free_mb:
        return {**record, "skipped": f"activation space {space_mb / 1024:.1f} GiB, estimated peak "
                                     f"{estimate_mb / 1024:.1f} GiB > 80 % of the {free_mb / 1024:.1f} GiB available"}
    measured = run_worker(memory_spec(config, "reference", size, batch, device, detector_dir,
                                      (config.reference_iterations, 1)))
    if "error" in measured:
        return {**record, "skipped": f"failed: {measured['error']}"}
    record.update({k: measured.get(k) for k in ("median_ms", "p90_ms", "min_ms", "per_image_ms", "iterations",
                                                "frames", "cpu_median_ms", *MEMORY_KEYS)})
    record["time_vs_daain"] = ratio(record["median_ms"], daain["median_ms"])
    record["peak_vs_daain"] = ratio(record["peak_mb"], daain.get("peak_mb"))
    if espnet.get("peak_mb") and daain.get("peak_mb"):
        record["extra_peak_vs_daain"] = ratio(record["peak_mb"] - espnet["peak_mb"],
                                              max(daain["peak_mb"] - espnet["peak_mb"], 1.0))
    frames = {name: frame_mb(leaf) for name, leaf in (("reference", record), ("espnet", espnet), ("daain", daain))}
    if None not in frames.values():
        record["frame_mb_vs_daain"] = ratio(frames["reference"], max(frames["daain"], 1.0))
        record["frame_extra_mb"] = {"reference": frames["reference"] - frames["espnet"],
                                    "daain": frames["daain"] - frames["espnet"]}
        record["frame_extra_vs_daain"] = ratio(frames["reference"] - frames["espnet"],
                                               max(frames["daain"] - frames["espnet"], 1.0))
    return record


def _put(tree, size, batch, device, leaf):
    tree.setdefault(size_label(size), {}).setdefault(f"batch{batch}", {})[str(device)] = leaf


def run_fit(config, size, device):
    spec = {"task": "fit", "model": str(Path(config.model).resolve()), "footage": config.footage, "size": list(size),
            "device": str(device), "frames": 5 if config.quick else 100,
            "config": {**(QUICK_FIT if config.quick else FULL_FIT), "target_dims": config.dims},
            "threads": config.threads}
    result = {**EMPTY, **run_worker(spec)}
    if config.quick:
        result["note"] = "quick: 5 frames, 2 epochs; fixed costs (loading, probing, key) dominate the per-100 figure"
    return result


def run_node(config, size, detector_dir, device):
    if "node" in config.skip:
        return {**EMPTY, "skipped": "--skip node"}
    try:
        from daain_ros.bench.node import bench_node
    except ImportError as exc:
        return {**EMPTY, "skipped": f"rclpy or the node is not importable ({exc})"}
    frames, _ = bench_frames(10, size, config.footage)
    try:
        return bench_node(str(Path(config.model).resolve()), str(Path(detector_dir).resolve()), frames, size,
                          config.quick, device, contention="contention" not in config.skip,
                          compiled=config.compile_skipped is None)
    except DaainError as exc:
        return {**EMPTY, "error": one_line(exc)}


def bench_case(config, size, batch, device, detector_dir, result, steps):
    """espnet, daain and the backends (timed together) and reference at one size, batch and device, into ``result``."""
    espnet, daain, backends = time_pair(config, size, batch, device, steps)
    _put(result["backends"], size, batch, device, backends)
    espnet = with_memory(espnet, run_worker(memory_spec(config, "espnet", size, batch, device, detector_dir)))
    daain = with_memory(daain, run_worker(memory_spec(config, "daain", size, batch, device, detector_dir)))
    _put(result["espnet"], size, batch, device, espnet)
    _put(result["daain"], size, batch, device, daain)
    _put(result["overhead"], size, batch, device, daain["overhead"])
    _put(result["reference"], size, batch, device,
         reference_leaf(config, size, batch, device, detector_dir, espnet, daain))


def run_bench(config, log=print):
    """Runs every section and returns the benchmark as a JSON-ready dict."""
    for size in config.sizes:
        check_network_size(*size)
    devices = config.devices or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    torch.set_num_threads(config.threads)
    started = time.monotonic()
    log = (lambda say: lambda line: say(f"[{time.monotonic() - started:6.1f} s] {line}"))(log)
    result = {"provenance": provenance(), "machine": machine_info(config.threads, devices), "espnet": {},
              "daain": {}, "reference": {}, "overhead": {}, "backends": {}, "frame": {}}
    with tempfile.TemporaryDirectory(prefix="daain_bench_") as workdir:
        detectors = prepare_detectors(config, workdir)
        result["settings"] = _settings(config, detectors)
        steps = {}
        for size, batch in config.cases():
            for device in map(torch.device, devices):
                if (size, device) not in steps:
                    log(f"loading and exporting the variants at {size_label(size)} on {device} ...")
                    steps[size, device] = backend_steps(config.model, detectors[size][0], size, device,
                                                        config.threads, "onnxruntime" not in config.skip,
                                                        config.compile_skipped is None)
                log(f"timing {size_label(size)} batch {batch} on {device} ...")
                bench_case(config, size, batch, device, detectors[size][0], result, steps[size, device])
        first, last_device = config.sizes[0], devices[-1]  # fit, node and profile: CUDA when present
        for device in map(torch.device, devices):
            log(f"timing whole camera-size frames at {size_label(first)} on {device} ...")
            frame = time_frame(config, steps[first, device], device)
            result["frame"][str(device)] = {"size": size_label(first), **frame}
        steps.clear()
        if config.profile:
            log(f"profiling {size_label(first)} batch 1 on {last_device} ...")
            from daain_ros.bench.profile import profile_hot_path
            result["profile"] = profile_hot_path(config.model, detectors[first][0], first, torch.device(last_device),
                                                 config.footage)
        log("fit ...")
        skipped = {**EMPTY, "skipped": "--skip fit"}
        result["fit"] = skipped if "fit" in config.skip else run_fit(config, first, last_device)
        log("node ...")
        result["node"] = {"size": size_label(first), **run_node(config, first, detectors[first][0], last_device)}
    result["overhead"]["headline"] = _headline(result["overhead"])
    result["daain"]["overhead"] = result["overhead"]["headline"]
    result["machine"]["load_average_end"] = list(os.getloadavg())
    return result


def _headline(overhead):
    """daain/espnet at 512x256 batch 1 on CPU (else the first case measured)."""
    size, batch, device = HEADLINE
    value = overhead.get(size, {}).get(batch, {}).get(device)
    if value is None:
        size = next(iter(overhead))
        batch = next(iter(overhead[size]))
        device = next(iter(overhead[size][batch]))
        value = overhead[size][batch][device]
    return {"ratio": value, "at": f"{size} {batch} {device}"}


def _settings(config, detectors):
    _, source = bench_frames(1, config.sizes[0], config.footage)
    return {"quick": config.quick, "model": str(config.model), "threads": config.threads,
            "iterations": config.timed, "warmup": config.warmup, "reference_iterations": config.reference_iterations,
            "block": config.block,
            "frames": f"{source}, resized to the network size (preprocessing is conversion and normalisation only; "
                      "the whole-frame case times camera-size frames, resize included)",
            "detectors": {size_label(size): text for size, (_, text) in detectors.items()},
            "timing": f"espnet, daain and the backends' variants interleaved in one process, {config.block} batch(es) "
                      "in a row each (order alternating); peak memory from a fresh process per variant",
            "skip": list(config.skip), "compiled_variants": config.compile_skipped or "timed on the CPU"}


def parse_sizes(text):
    """'512x256,1024x512' -> ((512, 256), (1024, 512))."""
    try:
        sizes = tuple(tuple(int(v) for v in item.lower().split("x")) for item in text.split(","))
    except ValueError as exc:
        raise DaainError(f"sizes {text!r}: expected WxH[,WxH...] like 512x256,1024x512") from exc
    if any(len(size) != 2 for size in sizes):
        raise DaainError(f"sizes {text!r}: expected WxH[,WxH...] like 512x256,1024x512")
    return tuple(check_network_size(*size) for size in sizes)


def check_devices(devices):
    for name in devices:
        if name not in ("cpu", "cuda"):
            raise DaainError(f"device {name!r}: expected cpu or cuda")
        if name == "cuda" and not torch.cuda.is_available():
            raise DaainError("device cuda requested but CUDA is not available")
    return tuple(devices)
