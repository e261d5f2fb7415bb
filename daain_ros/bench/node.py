"""The node part of ``daain bench``: ``detector_node`` in its own process, frames sent over DDS on this machine.

Measures the latency from publishing an Image to receiving ``/daain/anomaly`` for it (one frame in
flight at a time), the highest input rate at which every frame is judged (a sweep of rates), and a run
at 30 Hz: frames dropped, latency early and late in the run, and the node's resident memory before and
after. In runs with several frames in flight the flag (a Bool, no stamp) cannot be matched to its frame,
so latency is taken at the frame's ``/diagnostics`` status, which carries the stamp and is published
right after the flag, under the same lock; ``node_internal_median_ms`` is the node's own arrival-to-publish
time from those diagnostics, the rest is DDS and this client. Imports rclpy: only ``daain bench`` loads this module.
"""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from daain_ros.ros.fastdds import use_fastdds_profile

use_fastdds_profile()  # the node's large-frame profile, before any participant exists

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from daain_ros.errors import DaainError  # noqa: E402
from daain_ros.io.image_codec import encode_image  # noqa: E402
from daain_ros.memory import process_status_mb  # noqa: E402
from daain_ros.ros.processes import node_command, stop_process  # noqa: E402

TOPIC = "/daain_bench/image"
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RATES_HZ = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30)
STALE_TIMEOUT_S = 5.0  # well above any gap the benchmark leaves, so no STALE flags interleave


class NodeUnderTest:
    """``detector_node`` as a subprocess with the benchmark's model, detector, device and thread count."""

    def __init__(self, model, detector, device, threads, log_dir):
        self.log_path = Path(log_dir) / "detector_node.log"
        args = node_command(TOPIC, model_path=model, detector_path=detector, device=device,
                            stale_timeout=STALE_TIMEOUT_S)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        env.setdefault("ROS_LOG_DIR", str(Path(log_dir) / "ros_log"))
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log_tail(self, lines=5):
        return " | ".join(self.log_path.read_text().strip().splitlines()[-lines:])

    def stop(self):
        stop_process(self.process)
        self._log.close()


class BenchClient:
    """Publishes stamped frames and records when the flag and each frame's diagnostic arrive."""

    def __init__(self, frames_bgr):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("daain_bench_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.publisher = self.node.create_publisher(Image, TOPIC, RELIABLE)
        self.node.create_subscription(Bool, "/daain/anomaly", lambda _m: self.flags.append(time.monotonic()),
                                      LATCHED)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)
        self.messages = [Image(**encode_image(frame, "bgr8")) for frame in frames_bgr]
        self.flags, self.sent, self.judged, self.counters, self.inside_ms = [], {}, {}, {}, {}
        self._count = 0

    def _on_diagnostics(self, msg):
        now = time.monotonic()
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            stamp = values.get("frame stamp")
            if stamp in self.sent and stamp not in self.judged:
                self.judged[stamp] = now
                self.inside_ms[stamp] = _number(values.get("latency ms"))
                self.counters = values

    def spin_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not (done := predicate()) and (left := deadline - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(0.005, left))
        return done

    def send(self):
        """Publishes the next frame with a unique stamp; returns the stamp text."""
        self._count += 1
        msg = self.messages[self._count % len(self.messages)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + self._count, 0
        stamp = f"{1000 + self._count}.{0:09d}"
        self.sent[stamp] = time.monotonic()
        self.publisher.publish(msg)
        return stamp

    def wait_ready(self, process, timeout):
        ready = self.spin_until(lambda: process.poll() is not None or (
            self.publisher.get_subscription_count() > 0 and self.flags), timeout)
        return ready and process.poll() is None

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


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


def bench_node(model, detector, frames_bgr, threads, quick, device="cpu"):
    """The ``node`` section of the benchmark JSON."""
    frames, warmup = (3, 1) if quick else (30, 3)
    rate_s, at30_s, max_trials = (1.0, 2.0, 2) if quick else (5.0, 10.0, len(RATES_HZ))
    # A domain of its own unless the caller chose one: other ROS 2 processes on the machine stay out.
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    with tempfile.TemporaryDirectory(prefix="daain_bench_node_") as log_dir:
        node = NodeUnderTest(model, detector, device, threads, log_dir)
        client = BenchClient(frames_bgr)
        try:
            started = time.monotonic()
            if not client.wait_ready(node.process, 120.0):
                raise DaainError(f"detector_node did not come up (exit code {node.process.poll()}): {node.log_tail()}")
            result = {"startup_s": time.monotonic() - started, "device": device, "threads": threads}
            seconds, stamps = latency(client, frames, warmup)
            lat = {**ms_summary(seconds), "node_internal_median_ms": inside_median_ms(client, stamps)}
            drain = max(2.0, 10 * lat["median_ms"] / 1e3)
            best, trials = sweep(client, 0.7 * 1e3 / lat["median_ms"], rate_s, drain, max_trials)
            rss_start = process_status_mb("VmRSS", node.process.pid)
            counters_before = dict(client.counters)
            at30, seconds = run_at_rate(client, 30, at30_s, drain)
            half = len(seconds) // 2
            at30.update(ms_summary(seconds), latency_first_half_ms=ms_summary(seconds[:half])["median_ms"],
                        latency_second_half_ms=ms_summary(seconds[half:])["median_ms"],
                        dropped_by_node=_counter_delta(counters_before, client.counters, "frames dropped"),
                        rss_start_mb=rss_start, rss_end_mb=process_status_mb("VmRSS", node.process.pid))
            result.update(lat, latency=lat, max_rate_hz=best, sweep=trials, sweep_seconds_per_rate=rate_s,
                          sweep_capped=len(trials) >= max_trials, at_30hz=at30,
                          peak_mb=process_status_mb("VmHWM", node.process.pid))
            return result
        finally:
            client.close()
            node.stop()


def _counter_delta(before, after, key):
    try:
        return int(after[key]) - int(before.get(key, 0))
    except (KeyError, ValueError):
        return None
