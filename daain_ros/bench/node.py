# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The node part of ``daain bench``: ``detector_node`` in its own process, frames sent over DDS on this machine.

Measures the latency from publishing an Image to receiving ``/daain/anomaly`` for it (one frame in
flight at a time), the highest input rate at which every frame is judged (a sweep of rates), and a run
at 30 Hz: frames dropped and lost, latency early and late in the run, and the node's resident memory before and
after. In runs with several frames in flight the flag (a Bool, no stamp) cannot be matched to its frame,
so latency is taken at the frame's ``/diagnostics`` status, which carries the stamp and is published
right after the flag, under the same lock; ``node_internal_median_ms`` is the node's own arrival-to-publish
time from those diagnostics, the rest is DDS and the client (:class:`daain_ros.ros.node_client.NodeClient`).

The headline run is the node as a user launches it: backend ``auto``, ``workers`` and ``threads`` 0 (its
defaults). Before it, ESPNet alone runs with the same backend, workers and threads in this process, with no
monitor and no ROS (``espnet_alone``): about the most frames per second a node with those settings could judge on
this machine in this run, so a node's rate can be told apart from the machine's.

Contention (``contention``): a vehicle computer always runs other processes. For each backend and each
setting of workers and threads, a node measures the highest rate at which it judges every frame with the
cores to itself, then again with one busy-loop process pinned to the same cores, and the ratio of the two.
When the run times the compiled variants, the torch backend with ``compile: torch-compile`` (one thread per
worker) is one more setting.
"""

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from daain_ros.bench.variants import AcceleratedEspnetStep, OnnxEspnetStep, synchronize
from daain_ros.deploy import BACKENDS
from daain_ros.deploy.backends import resolve_backend
from daain_ros.errors import DaainError, one_line
from daain_ros.memory import process_status_mb
from daain_ros.ros.model import resolve_workers
from daain_ros.ros.node_client import NodeClient
from daain_ros.ros.processes import ChildProcess, node_command
from daain_ros.segmentation.espnet import load_espnet

TOPIC = "/daain_bench/image"
#: Input rates tried, up to what a GPU serves (a camera's 30 Hz is the everyday one, 100 Hz the GPU goal).
RATES_HZ = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200)
STALE_TIMEOUT_S = 5.0  # well above any gap the benchmark leaves, so no STALE flags interleave
#: Workers of the contention runs: one frame at a time, or two (the node's CPU default).
CONTENTION_WORKERS = (1, 2)
#: The competing process: CPU-bound, no memory traffic, never yields.
BUSY_LOOP = "while True: pass"


#: The node's own defaults (:mod:`daain_ros.ros.settings`): what the headline run measures.
NODE_BACKEND, NODE_WORKERS, NODE_THREADS = "auto", 0, 0


def start_node(model, detector, device, threads, log_dir, backend="torch", workers=NODE_WORKERS,
               compile="auto"):  # noqa: A002 (the node's parameter)
    """``detector_node`` as a ``ChildProcess`` with the benchmark's settings (workers, threads 0: its defaults)."""
    command = node_command(TOPIC, model_path=model, detector_path=detector, device=device, backend=backend,
                           workers=workers, threads=threads, compile=compile, stale_timeout=STALE_TIMEOUT_S)
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    env.setdefault("ROS_LOG_DIR", str(Path(log_dir) / "ros_log"))
    return ChildProcess(command, Path(log_dir) / "detector_node.log", env)


@contextmanager
def running_node(model, detector, frames_bgr, device, threads, backend="torch", workers=NODE_WORKERS,
                 compile="auto"):  # noqa: A002 (the node's parameter)
    """A started ``detector_node`` and a ``NodeClient`` it answers: (client, node process, start-up seconds)."""
    with tempfile.TemporaryDirectory(prefix="daain_bench_node_") as log_dir, \
            start_node(model, detector, device, threads, log_dir, backend, workers, compile) as node:
        client = NodeClient(frames_bgr, TOPIC)
        try:
            started = time.monotonic()
            if not client.wait_ready(node.process, 120.0):
                raise DaainError(f"detector_node did not come up (exit code {node.process.poll()}): "
                                 f"{node.log_tail(5)}")
            yield client, node.process, time.monotonic() - started
        finally:
            client.close()


@contextmanager
def competing_processes(count=1, cpus=None):
    """``count`` busy-loop processes pinned to ``cpus`` (default: this process's, which a node inherits).

    Yields their pids; they are killed on leaving, whatever happened inside.
    """
    cpus = sorted(cpus or os.sched_getaffinity(0))
    burners = []
    try:
        for _ in range(count):
            burners.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP]))
            os.sched_setaffinity(burners[-1].pid, cpus)
        yield [burner.pid for burner in burners]
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def inside_median_ms(client, stamps):
    """Median of the node's own arrival-to-publish latency (its diagnostics) over ``stamps``."""
    values = [client.inside_ms[s] for s in stamps if client.inside_ms.get(s) is not None]
    return float(np.median(values)) if values else None


def latency(client, frames, warmup, timeout=30.0):
    """Publish-to-flag latency with one frame in flight, over ``frames`` frames after ``warmup``."""
    seconds, stamps = [], []
    for i in range(warmup + frames):
        before = len(client.flags)
        stamp = client.send()
        if not client.spin_until(lambda: stamp in client.judged and len(client.flags) > before, timeout):
            raise DaainError(f"no /daain/anomaly for frame {stamp} within {timeout:.0f} s")
        if i >= warmup:
            seconds.append(client.flags[before] - client.sent[stamp])
            stamps.append(stamp)
    return seconds, stamps


def run_at_rate(client, rate_hz, duration_s, drain_s):
    """Publishes at ``rate_hz`` for ``duration_s``; frames sent, judged and dropped, and their latencies."""
    start = time.monotonic() + 0.05
    stamps = []
    for i in range(max(1, round(rate_hz * duration_s))):
        client.spin_until(lambda target=start + i / rate_hz: time.monotonic() >= target, 5.0)
        stamps.append(client.send())
    client.spin_until(lambda: all(s in client.judged for s in stamps), drain_s)
    judged = [s for s in stamps if s in client.judged]
    seconds = [client.judged[s] - client.sent[s] for s in judged]
    return {"rate_hz": rate_hz, "sent": len(stamps), "processed": len(judged), "dropped": len(stamps) - len(judged),
            "node_internal_median_ms": inside_median_ms(client, judged)}, seconds


def sweep(client, start_hz, duration_s, drain_s, max_trials=len(RATES_HZ)):
    """The highest rate in ``RATES_HZ`` at which every frame is judged, and the trials that found it.

    Starts at the rate nearest below ``start_hz`` and goes up until a rate drops a frame, or down
    until one does not.
    """
    i = max([k for k, r in enumerate(RATES_HZ) if r <= start_hz], default=0)
    trials = []

    def clean(k):
        if len(trials) >= max_trials:
            return False
        trials.append(run_at_rate(client, RATES_HZ[k], duration_s, drain_s)[0])
        return trials[-1]["dropped"] == 0

    if clean(i):
        while i + 1 < len(RATES_HZ) and clean(i + 1):
            i += 1
        return RATES_HZ[i], trials
    while i > 0 and len(trials) < max_trials:
        i -= 1
        if clean(i):
            return RATES_HZ[i], trials
    return None, trials


def ms_summary(seconds):
    if not seconds:
        return {"median_ms": None, "p90_ms": None, "frames": 0}
    ms = np.asarray(seconds) * 1e3
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "frames": len(ms)}


def durations(quick):
    """(latency frames, warm-up frames, seconds per sweep rate, seconds at 30 Hz, sweep trials)."""
    return (3, 1, 1.0, 2.0, 2) if quick else (30, 3, 5.0, 10.0, len(RATES_HZ))


def top_rate(client, quick):
    """Latency with one frame in flight, then the sweep for the highest rate at which every frame is judged."""
    frames, warmup, rate_s, _, max_trials = durations(quick)
    seconds, stamps = latency(client, frames, warmup)
    lat = {**ms_summary(seconds), "node_internal_median_ms": inside_median_ms(client, stamps)}
    drain = max(2.0, 10 * lat["median_ms"] / 1e3)
    best, trials = sweep(client, 0.7 * 1e3 / lat["median_ms"], rate_s, drain, max_trials)
    return lat, best, trials, drain


def bench_node(model, detector, frames_bgr, size, quick, device="cpu", contention=True, compiled=False):
    """The ``node`` section of the benchmark JSON (the node's default backend and threads), with ``contention``.

    :param size: the detector's network size (W, H), which ``espnet_alone`` runs at.
    :param compiled: contention also runs torch with ``compile: torch-compile`` (:func:`contention_settings`).
    """
    _, _, rate_s, at30_s, max_trials = durations(quick)
    alone = espnet_alone(model, frames_bgr, size, device, at30_s)
    # A domain of its own unless the caller chose one: other ROS 2 processes on the machine stay out.
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    with running_node(model, detector, frames_bgr, device, NODE_THREADS, NODE_BACKEND, NODE_WORKERS) as \
            (client, process, startup_s):
        lat, best, trials, drain = top_rate(client, quick)
        rss_start = process_status_mb("VmRSS", process.pid)
        counters_before = dict(client.counters)
        at30, seconds = run_at_rate(client, 30, at30_s, drain)
        half = len(seconds) // 2
        at30.update(ms_summary(seconds), latency_first_half_ms=ms_summary(seconds[:half])["median_ms"],
                    latency_second_half_ms=ms_summary(seconds[half:])["median_ms"],
                    dropped_by_node=_counter_delta(counters_before, client.counters, "frames dropped"),
                    lost_before_node=_counter_delta(counters_before, client.counters, "frames lost"),
                    rss_start_mb=rss_start, rss_end_mb=process_status_mb("VmRSS", process.pid))
        result = {"startup_s": startup_s, "device": device, "backend": NODE_BACKEND, "workers": NODE_WORKERS,
                  "threads": NODE_THREADS,
                  "runs_on": resolve_backend(NODE_BACKEND, torch.device(device)),
                  "cpus": len(os.sched_getaffinity(0)), **lat, "latency": lat,
                  "max_rate_hz": best, "sweep": trials, "sweep_seconds_per_rate": rate_s,
                  "sweep_capped": len(trials) >= max_trials, "at_30hz": at30,
                  "peak_mb": process_status_mb("VmHWM", process.pid), "espnet_alone": alone}
    result["contention"] = (bench_contention(model, detector, frames_bgr, quick, device, compiled) if contention
                            else {"skipped": "--skip contention"})
    return result


def espnet_alone(model, frames_bgr, size, device, seconds):
    """Frames per second of ESPNet alone on the headline node's backend, workers and threads, for ``seconds``.

    Preprocessing, ESPNet and argmax (ONNX Runtime on a CPU, a CUDA graph on CUDA, as the node's ``auto``
    settings choose), with no monitor and no ROS, on as many threads as the node has workers, each taking the
    next frame as soon as it finished one, as the node's inference threads do when the input outruns them.
    """
    device = torch.device(device)
    backend = resolve_backend(NODE_BACKEND, device)
    workers = resolve_workers(SimpleNamespace(backend=backend, device=str(device), workers=NODE_WORKERS))
    if backend == "onnxruntime":
        step = OnnxEspnetStep(load_espnet(model), size, NODE_THREADS or None)
    else:  # backend auto is torch on CUDA only, replayed as a CUDA graph (compile auto)
        step = AcceleratedEspnetStep(load_espnet(model, device), size, "cuda-graph")
    for frame in frames_bgr[:2]:  # warm-up (and a CUDA graph's capture)
        step([frame])
    synchronize(device)
    start = time.monotonic()
    stop = start + seconds

    def run(first):
        done = 0
        while time.monotonic() < stop:
            step([frames_bgr[(first + done * workers) % len(frames_bgr)]])
            synchronize(device)
            done += 1
        return done

    with ThreadPoolExecutor(workers, thread_name_prefix="espnet_alone") as pool:
        frames = sum(pool.map(run, range(workers)))
    elapsed = time.monotonic() - start
    return {"backend": backend, "workers": workers, "threads": NODE_THREADS, "frames": frames, "seconds": elapsed,
            "frames_per_s": frames / elapsed}


def bench_contention(model, detector, frames_bgr, quick, device="cpu", compiled=False):
    """Each setting of :func:`contention_settings` alone, then beside one competing busy loop."""
    rows = []
    for backend, workers, threads, mode in contention_settings(quick, compiled and device == "cpu"):
        row = {"backend": backend, "workers": workers, "threads": threads, "compile": mode}
        try:
            row.update(contended(model, detector, frames_bgr, quick, "cpu" if backend == "onnxruntime" else device,
                                 backend, threads, workers, mode))
        except DaainError as exc:
            row["error"] = one_line(exc)
        rows.append(row)
    return {"competing_processes": 1, "busy_loop": BUSY_LOOP, "cpus": sorted(os.sched_getaffinity(0)),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),  # the node's unless given
            "settings": rows}


def contention_settings(quick, compiled=False):
    """(backend, workers, threads, compile) of each contention run.

    Quick: torch, one worker of one thread. Else every backend, worker count and thread count with the node's
    ``compile`` default, then, when ``compiled``, torch compiled with ``torch.compile`` at one thread per worker
    (on a CPU: it was faster per frame than eager torch there, so it is the setting to compare).
    """
    if quick:
        return [("torch", 1, 1, "auto")]
    settings = [(backend, workers, threads, "auto") for backend in BACKENDS for workers in CONTENTION_WORKERS
                for threads in contention_threads()]
    return settings + ([("torch", workers, 1, "torch-compile") for workers in CONTENTION_WORKERS] if compiled else [])


def contention_threads():
    """Threads per inference the contention runs try: 1, and one per core (the node's default) when that is more."""
    return sorted({1, len(os.sched_getaffinity(0))})


def contended(model, detector, frames_bgr, quick, device, backend, threads, workers,
              compile="auto"):  # noqa: A002 (the node's parameter)
    """One node's top rate with the cores to itself, then with a busy loop on them; their ratio."""
    with running_node(model, detector, frames_bgr, device, threads, backend, workers, compile) as (client, _, _):
        runs = {}
        for condition, competitors in (("idle", 0), ("contended", 1)):
            with competing_processes(competitors):
                lat, best, trials, _ = top_rate(client, quick)
            runs[condition] = {"max_rate_hz": best, "median_ms": lat["median_ms"], "p90_ms": lat["p90_ms"],
                               "node_internal_median_ms": lat["node_internal_median_ms"], "sweep": trials}
    idle, busy = runs["idle"]["max_rate_hz"], runs["contended"]["max_rate_hz"]
    return {"device": device, **runs, "ratio": (busy or 0) / idle if idle else None}  # busy None: below 1 Hz


def _counter_delta(before, after, key):
    try:
        return int(after[key]) - int(before.get(key, 0))
    except (KeyError, ValueError):
        return None
