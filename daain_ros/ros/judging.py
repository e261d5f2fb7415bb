# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The frame flow of a configured ``detector_node``: the newest frame in, its verdict out, only while active.

The subscription callback only drops the message into a one-frame slot; a worker thread decodes, runs the
pipeline and publishes, so the node judges the newest frame and its memory stays bounded. Verdicts are
published under one lock, and once :meth:`FrameJudge.stop` has raised the flag, a frame still in inference
cannot lower it.
"""

import threading
import time
from concurrent.futures import wait

from daain_ros.ros import health
from daain_ros.ros.debounce import KOfN
from daain_ros.ros.frame_slot import FrameSlot
from daain_ros.ros.model import apply_threshold, infer, warn_level
from daain_ros.ros.outputs import ResultPublishers

#: Inference that has not returned after this long (or 10 stale timeouts) is reported as an ERROR.
OVERDUE_S = 5.0


class FrameJudge:
    """Judges frames with ``pipeline`` between :meth:`start` and :meth:`stop`; :meth:`close` ends its worker.

    :param verdicts: the node's ``VerdictPublisher``; :param topic: the input's name for the diagnostics.
    :param inference: the node's one-thread executor that loaded ``pipeline``: the worker loop runs on it, so
        every torch computation of the node runs on one thread (a second thread's OpenMP team contends for
        the cores with the first: inference took 68 instead of 43 ms at 512x256 on 2 cores).
    """

    def __init__(self, node, settings, pipeline, decode, verdicts, topic, inference):
        self.pipeline, self.topic = pipeline, topic
        self.settings, self._verdicts = settings, verdicts
        self._lock = threading.Lock()
        self._slot = FrameSlot()
        self._debounce = settings.debounce()
        self._warn_above = warn_level(pipeline)
        self._results = ResultPublishers(node, settings.publish_color)
        self._active, self._processed, self._last_stamp, self._busy_since = False, 0, None, None
        self._last_arrival = time.monotonic()
        self._worker = inference.submit(self._work, pipeline, decode)

    def start(self, topic):
        """Judges the frames that arrive from now on (``topic``: the subscription's resolved name)."""
        self._last_arrival = time.monotonic()
        with self._lock:
            self.topic = topic
            self._debounce.reset()
            self._active = True
            self._publish(health.waiting(topic))

    def stop(self, verdict):
        """Stops judging and publishes ``verdict`` (one with the flag raised)."""
        with self._lock:
            self._active = False
            self._publish(verdict)

    def report(self, verdict):
        with self._lock:
            self._publish(verdict)

    def close(self, timeout=OVERDUE_S):
        """Stops the worker (waiting up to ``timeout`` s for a frame in inference) and detaches the pipeline's monitor.

        False when the worker still runs.
        """
        with self._lock:
            self._active = False
        self._slot.close()
        wait([self._worker], timeout)
        self._results.destroy()
        self.pipeline.close()
        return self._worker.done()

    def describe(self):
        (width, height), settings = self.pipeline.size, self.settings
        threads = settings.threads or "default"
        backend = self.pipeline.backend.name
        compile_mode = f", compile {settings.compile}" if backend == "torch" else ""
        return (f"{width}x{height} on {self.pipeline.device} ({backend}, threads {threads}{compile_mode}), "
                f"threshold {self.pipeline.threshold:.6g}, debounce {self._debounce.k} of "
                f"{self._debounce.n}")

    def set_debounce(self, k, n):
        with self._lock:
            self._debounce = KOfN(k, n)

    def set_threshold(self, value):
        with self._lock:
            apply_threshold(self.pipeline, value)

    def on_image(self, msg):
        self._last_arrival = time.monotonic()
        self._slot.put((msg, self._last_arrival))

    def _work(self, pipeline, decode):
        while (item := self._slot.take()) is not None:
            self._busy_since = time.monotonic()
            self._judge(infer(pipeline, decode, item[0]), *item)
            self._busy_since = None

    def _judge(self, inferred, msg, arrived):
        image, result, failed = inferred
        with self._lock:
            if not self._active:
                return  # stopped meanwhile: the flag already says so
            self._processed += 1
            self._last_stamp = health.format_stamp(msg.header.stamp.sec, msg.header.stamp.nanosec)
            if failed is not None:
                self._debounce.update(True)
                self._publish(failed, msg.header, arrived)
                return
            self._results.publish(result, image, msg.header)
            self._publish(self._verdict(result), msg.header, arrived)

    def _verdict(self, result):
        flag = self._debounce.update(result.anomalous)
        window = f"{self._debounce.anomalous_in_window} of the last {self._debounce.n}"
        return health.frame_verdict(result.score, result.threshold, result.anomalous, flag, self._warn_above,
                                    window)

    def check_health(self):
        """Timer while active: STALE when the input stopped, ERROR when inference stopped returning."""
        now, stale_timeout = time.monotonic(), self.settings.stale_timeout
        silent, busy = now - self._last_arrival, self._busy_since
        with self._lock:
            if not self._active:
                return
            if silent > stale_timeout:
                self._debounce.reset()
                self._publish(health.stale(silent, self.topic))
            elif self._worker.done():
                self._publish(health.failure("processing", "inference worker stopped"))
            elif busy is not None and now - busy > max(OVERDUE_S, 10 * stale_timeout):
                self._publish(health.failure("processing", f"inference has not returned for {now - busy:.1f} s"))

    def _publish(self, verdict, header=None, arrived=None):
        """Publishes the flag and the diagnostic of ``verdict`` (call with the lock held)."""
        latency_ms = (time.monotonic() - arrived) * 1e3 if arrived is not None else None
        values = health.key_values(verdict, self._last_stamp, latency_ms, self._processed, self._slot.dropped)
        self._verdicts.publish(verdict, values, self.topic, header.stamp if header is not None else None)
