# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The frame flow of a configured ``detector_node``: the newest frame in, its verdict out, only while active.

The subscription callback only drops the message into a one-frame slot; worker threads (``workers``, one by
default on CUDA, two on a CPU) take frames from it in turn, decode them, run the pipeline and publish, so
the node judges the newest frames and its memory stays bounded. Verdicts are published in the order the
frames were taken, under one lock, and once :meth:`FrameJudge.stop` has raised the flag, a frame still in
inference cannot lower it.
"""

import threading
import time
from concurrent.futures import wait
from functools import partial

from daain_ros.ros import health
from daain_ros.ros.debounce import KOfN
from daain_ros.ros.frame_slot import FrameSlot
from daain_ros.ros.in_order import InOrder
from daain_ros.ros.model import apply_threshold, infer, warn_level
from daain_ros.ros.outputs import ResultPublishers
from daain_ros.ros.sequence_gaps import SequenceGaps

#: Inference that has not returned after this long (or 10 stale timeouts) is reported as an ERROR.
OVERDUE_S = 5.0


class FrameJudge:
    """Judges frames with ``pipeline`` between :meth:`start` and :meth:`stop`; :meth:`close` ends its workers.

    :param verdicts: the node's ``VerdictPublisher``; :param topic: the input's name for the diagnostics.
    :param inference: the executor of ``workers`` threads that loaded ``pipeline``; the worker loops run on
        it, all sharing ``pipeline``, and no other thread of the node runs torch or ONNX Runtime (each thread
        that does has OpenMP teams of its own, which contend for the cores).
    """

    def __init__(self, node, settings, pipeline, decode, verdicts, topic, inference, workers=1):
        self.pipeline, self.topic = pipeline, topic
        self.settings, self._verdicts = settings, verdicts
        self._lock = threading.Lock()
        self._slot, self._in_order, self._gaps = FrameSlot(), InOrder(), SequenceGaps()
        self._debounce = settings.debounce()
        self._warn_above = warn_level(pipeline)
        self._results = ResultPublishers(node, settings.publish_color)
        self._active, self._processed, self._last_stamp = False, 0, None
        self._max_latency = settings.max_latency
        self._busy_since = [None] * workers  # per worker: when its frame's inference started
        self._last_arrival = time.monotonic()
        self._inference = inference
        self._workers = [inference.submit(self._work, i, pipeline, decode) for i in range(workers)]

    def start(self, topic):
        """Judges the frames that arrive from now on (``topic``: the subscription's resolved name)."""
        self._last_arrival = time.monotonic()
        self._gaps.restart()
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
        """Stops the workers (waiting up to ``timeout`` s for frames in inference) and releases the pipeline.

        False when a worker still runs.
        """
        with self._lock:
            self._active = False
        self._slot.close()
        self._in_order.close()
        wait(self._workers, timeout)
        self._inference.shutdown(wait=False)
        self._results.destroy()
        self.pipeline.close()
        return all(worker.done() for worker in self._workers)

    def describe(self):
        (width, height), settings = self.pipeline.size, self.settings
        backend = self.pipeline.backend.name
        compile_mode = f", compile {settings.compile}" if backend == "torch" else ""
        return (f"{width}x{height} on {self.pipeline.device} ({backend}, {len(self._workers)} worker(s) of "
                f"{settings.threads or 'default'} thread(s){compile_mode}), "
                f"threshold {self.pipeline.threshold:.6g}, debounce {self._debounce.k} of "
                f"{self._debounce.n}, max latency {self._max_latency:g} s")

    def set_debounce(self, k, n):
        with self._lock:
            self._debounce = KOfN(k, n)

    def set_max_latency(self, seconds):
        with self._lock:
            self._max_latency = seconds

    def set_threshold(self, value):
        with self._lock:
            apply_threshold(self.pipeline, value)

    def on_image(self, msg, info):
        """The subscription's callback (``info``: rclpy's message info, whose sequence numbers show losses)."""
        self._last_arrival = time.monotonic()
        self._gaps.arrived(info)
        self._slot.put((msg, self._last_arrival))

    def _work(self, worker, pipeline, decode):
        while (taken := self._slot.take()) is not None:
            number, (msg, arrived) = taken
            self._busy_since[worker] = time.monotonic()
            inferred = infer(pipeline, decode, msg)
            self._busy_since[worker] = None
            self._in_order.run(number, partial(self._judge, inferred, msg, arrived))

    def _judge(self, inferred, msg, arrived):
        image, result, failed = inferred
        with self._lock:
            if not self._active:
                return  # stopped meanwhile: the flag already says so
            self._processed += 1
            self._last_stamp = health.format_stamp(msg.header.stamp.sec, msg.header.stamp.nanosec)
            latency = time.monotonic() - arrived
            if failed is not None:
                self._debounce.update(True)
                self._publish(failed, msg.header, latency)
                return
            self._results.publish(result, image, msg.header)
            verdict = self._verdict(result)
            if latency > self._max_latency:
                verdict = health.late(verdict, latency, self._max_latency)
            self._publish(verdict, msg.header, latency)

    def _verdict(self, result):
        flag = self._debounce.update(result.anomalous)
        window = f"{self._debounce.anomalous_in_window} of the last {self._debounce.n}"
        return health.frame_verdict(result.score, result.threshold, result.anomalous, flag, self._warn_above,
                                    window)

    def check_health(self):
        """Timer while active: STALE when the input stopped, ERROR when inference stopped returning."""
        now, stale_timeout = time.monotonic(), self.settings.stale_timeout
        silent = now - self._last_arrival
        busy = min((since for since in list(self._busy_since) if since is not None), default=None)
        with self._lock:
            if not self._active:
                return
            if silent > stale_timeout:
                self._debounce.reset()
                self._publish(health.stale(silent, self.topic))
            elif any(worker.done() for worker in self._workers):
                self._publish(health.failure("processing", "inference worker stopped"))
            elif busy is not None and now - busy > max(OVERDUE_S, 10 * stale_timeout):
                self._publish(health.failure("processing", f"inference has not returned for {now - busy:.1f} s"))

    def _publish(self, verdict, header=None, latency=None):
        """Publishes the flag and the diagnostic of ``verdict`` (call with the lock held).

        :param latency: seconds from the frame's arrival to its verdict, for a judged frame.
        """
        latency_ms = latency * 1e3 if latency is not None else None
        facts = (self._last_stamp, latency_ms, self._processed, self._slot.dropped, self._gaps.lost)
        self._verdicts.publish(verdict, facts, self.topic, header.stamp if header is not None else None)
