# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain fleet bench``: what a fleet run gains over ``daain bag evaluate`` bag after bag, and what Ray costs.

On one set of bags, each timed as a separate process from start to exit:

- ``sequential``: ``daain bag evaluate`` once per bag, one after another (torch's default threads), as a
  shell loop over the bags would run it today;
- ``fleet``: ``daain fleet evaluate`` on a new local cluster with ``workers`` workers of one thread;
- ``plain``: one process that loads the pipeline once and evaluates every bag with one thread, no Ray;
- ``fleet_one``: ``daain fleet evaluate`` with one worker of one thread: the same work as ``plain``, so
  the difference is Ray's start-up (cluster, worker process) and scheduling.

The per-frame costs of the sizing note come from ``plain``'s bags (each bag's evaluation wall time over its
frames: reading, decoding, inference, writing). The JSON records the date, commit, machine (with its load
average before and after) and command line.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from daain_ros.demo.default_assets import DEFAULT_DIR, default_model_path
from daain_ros.errors import DaainError
from daain_ros.provenance import machine, provenance

#: The goals of issue 18, checked on the measured figures.
SPEEDUP_GOAL, OVERHEAD_GOAL = 1.6, 0.10
#: Frames of the default detector's street it was not fitted on (it was fitted on frames 0-199).
SYNTHETIC_FIRST, SYNTHETIC_SEED = 200, 7
QUICK_FIT_FRAMES = 30


@dataclass(frozen=True)
class BenchConfig:
    """What :func:`run_bench` measures; None model = the packaged default (with its detector)."""

    model: Path = None
    detector: Path = None
    footage: str = None
    bags: int = 10
    frames: int = 30
    workers: int = 2

    def __post_init__(self):
        for name in ("bags", "frames", "workers"):
            if getattr(self, name) < 1:
                raise DaainError(f"--{name} {getattr(self, name)}: expected a positive number")


def _daain(*args):
    return [sys.executable, "-m", "daain_ros.cli.main", *map(str, args)]


def _timed(command, log):
    """Runs ``command`` to its end; (wall seconds, exit code). Its output goes to ``log``."""
    started = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"$ {' '.join(map(str, command))}\n")
        out.flush()
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return time.perf_counter() - started, code


def _source_spec(config):
    if config.footage is not None:
        return config.footage, 0
    return f"synthetic:{SYNTHETIC_SEED}:{SYNTHETIC_FIRST + config.bags * config.frames}", SYNTHETIC_FIRST


def make_bags(config, folder):
    """Write ``config.bags`` bags of ``config.frames`` consecutive frames each; return their paths.

    They are cut one after another from the source, wrapping round a short video.
    """
    from daain_ros.evaluation.bag_make import make_bag
    from daain_ros.io.sources import open_source

    spec, first = _source_spec(config)
    total = open_source(spec).total
    paths = []
    for number in range(config.bags):
        start = first + number * config.frames
        if total is not None and start + config.frames > total:
            start = first + (number * config.frames) % max(1, total - first - config.frames)
        path = folder / f"bag_{number:03d}"
        make_bag(open_source(spec, slice(start, start + config.frames)), path)
        paths.append(path)
    return paths


def _detector(config, model, work):
    """The detector to time: given, the packaged one for the default model, or a quick fit on the footage.

    A quick fit (few frames, one epoch, no copies) has the dims and flow of a full fit, so the same per-frame
    cost; its threshold is not worth anything, and the benchmark does not look at flags.
    """
    if config.detector is not None:
        return Path(config.detector)
    if config.model is None:
        return DEFAULT_DIR / "detector"
    from daain_ros.detector.artifact import save_detector
    from daain_ros.detector.fit import FitConfig, fit_detector
    from daain_ros.detector.flow import FlowConfig
    from daain_ros.io.sources import open_source
    from daain_ros.segmentation.espnet import load_espnet

    spec, first = _source_spec(config)
    frames = [f.image for f in open_source(spec, slice(first, first + QUICK_FIT_FRAMES))]
    loaded = load_espnet(model)
    fit = FitConfig(key_seed=0, augment_copies=0, calibration_folds=0, flow=FlowConfig(epochs=1))
    return save_detector(fit_detector(loaded, frames, fit, progress=False), work / "detector", loaded)


def _summaries(folders):
    return [json.loads((folder / "summary.json").read_text()) for folder in folders]


def _per_frame(summaries):
    """Per-frame costs inside one process: the bags' evaluation time over their frames, and its inference part."""
    frames = sum(s["frames"] for s in summaries)
    wall = sum(s["wall_s"] for s in summaries)
    latency = sum(s["latency_ms"]["mean"] * s["processed"] for s in summaries) / 1e3
    return {"frames": frames, "evaluate_s": round(wall, 3), "frame_ms": 1e3 * wall / frames,
            "inference_ms": 1e3 * latency / frames, "io_ms": 1e3 * (wall - latency) / frames,
            "frames_per_hour": 3600 * frames / wall}


def _sizes(bags, outputs):
    """Bytes per frame of the input bags and of the output bags (the input topic copied, plus the detector's)."""
    def size(path):
        return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())

    frames = sum(s["frames"] for s in _summaries(outputs))
    return {"input_bytes_per_frame": sum(map(size, bags)) / frames,
            "output_bytes_per_frame": sum(size(o / "bag") for o in outputs) / frames}


def _run(name, command, log, frames):
    wall, code = _timed(command, log)
    if code not in (0, 1):  # 1: a fleet run whose bags did not all pass (no criteria: never here)
        raise DaainError(f"fleet bench: {name} exited with {code}; see {log}")
    return {"wall_s": round(wall, 3), "frames": frames, "frames_per_s": frames / wall, "command": command}


def _require(paths, name, log):
    """A run that wrote no result did not evaluate its bags: its time would be meaningless."""
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise DaainError(f"fleet bench: {name} wrote no {missing[0]} ({len(missing)} outputs missing); see {log}")


def run_bench(config, out, work=None, argv=None):
    """Runs the benchmark and writes its JSON to ``out``; returns the document.

    :param work: folder for the bags and outputs (kept); default a temporary folder, removed at the end.
    """
    out = Path(out)
    origin = provenance(argv)
    load_before = machine()["load_average"]
    temporary = work is None
    work = Path(tempfile.mkdtemp(prefix="daain-fleet-bench-")) if temporary else Path(work)
    try:
        doc = _measure(config, work)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    doc.update(config={**asdict(config), "model": str(config.model or default_model_path()),
                       "detector": doc.pop("detector"), "footage": _source_spec(config)[0]},
               load_average_before=load_before, load_average_after=machine()["load_average"], provenance=origin)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _measure(config, work):
    model = Path(config.model or default_model_path())
    work.mkdir(parents=True, exist_ok=True)
    detector = _detector(config, model, work)
    bags = make_bags(config, work / "bags")
    frames, log = config.bags * config.frames, work / "bench.log"
    pair = ("--detector", detector, "--model", model)
    sequential_outs = [work / "sequential" / bag.name for bag in bags]
    commands = {
        "sequential": [_daain("bag", "evaluate", bag, *pair, "--out", folder)
                       for bag, folder in zip(bags, sequential_outs)],
        "plain": [[sys.executable, "-m", "daain_ros.fleet.bench", "plain", json.dumps(
            {"bags": list(map(str, bags)), "detector": str(detector), "model": str(model),
             "out": str(work / "plain")})]],
        "fleet_one": [_daain("fleet", "evaluate", *bags, *pair, "--out", work / "fleet_one", "--address", "local",
                             "--workers", 1, "--threads-per-worker", 1)],
        "fleet": [_daain("fleet", "evaluate", *bags, *pair, "--out", work / "fleet", "--address", "local",
                         "--workers", config.workers, "--threads-per-worker", 1)],
    }
    outputs = {"sequential": [folder / "summary.json" for folder in sequential_outs],
               "plain": [work / "plain" / bag.name / "summary.json" for bag in bags],
               "fleet_one": [work / "fleet_one" / "fleet.json"], "fleet": [work / "fleet" / "fleet.json"]}
    runs = {}
    for name, steps in commands.items():
        results = [_run(name, command, log, frames) for command in steps]
        _require(outputs[name], name, log)
        wall = sum(r["wall_s"] for r in results)
        runs[name] = {"wall_s": round(wall, 3), "frames": frames, "frames_per_s": frames / wall,
                      "commands": [r["command"] for r in results], "processes": len(results)}
    import torch

    runs["sequential"]["threads"] = torch.get_num_threads()  # torch's default, as each process starts with it
    runs["fleet"].update(workers=config.workers, threads_per_worker=1)
    runs["fleet_one"].update(workers=1, threads_per_worker=1)
    speedup = runs["fleet"]["frames_per_s"] / runs["sequential"]["frames_per_s"]
    overhead = runs["fleet_one"]["wall_s"] / runs["plain"]["wall_s"] - 1
    plain_outs = [work / "plain" / bag.name for bag in bags]
    fleet_json = json.loads((work / "fleet" / "fleet.json").read_text())
    return {"detector": str(detector), "bags": [{"name": bag.name, "frames": config.frames} for bag in bags],
            "runs": runs, "per_frame": _per_frame(_summaries(plain_outs)),
            "per_frame_fleet": _per_frame(_summaries([work / "fleet" / "bags" / b.name for b in bags])),
            "fleet_workers": fleet_json["workers"], "storage": _sizes(bags, plain_outs),
            "goals": {"speedup": speedup, "speedup_goal": SPEEDUP_GOAL, "speedup_met": speedup >= SPEEDUP_GOAL,
                      "ray_overhead": overhead, "ray_overhead_goal": OVERHEAD_GOAL,
                      "ray_overhead_met": overhead <= OVERHEAD_GOAL}}


def plain(bags, detector, model, out):
    """The ``plain`` run: one process, the pipeline loaded once, every bag evaluated with one thread, no Ray."""
    import torch

    from daain_ros.evaluation.bag_replay import evaluate_bag
    from daain_ros.pipeline import Pipeline
    from daain_ros.segmentation.subnormal import flush_denormals

    flush_denormals()
    torch.set_num_threads(1)
    pipeline = Pipeline.load(model, detector, "cpu")
    for bag in bags:
        evaluate_bag(bag, detector=detector, model=model, out=Path(out) / Path(bag).name, pipeline=pipeline,
                     progress=False)


if __name__ == "__main__":
    if sys.argv[1:2] != ["plain"] or len(sys.argv) != 3:
        sys.exit("usage: python -m daain_ros.fleet.bench plain JSON")
    plain(**json.loads(sys.argv[2]))
