# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""A DDS client of ``detector_node``: publishes stamped camera frames and notes when each one is judged.

The flag (a Bool) carries no stamp, so a frame counts as judged when its ``/diagnostics`` status, which
carries the frame's stamp and is published right after the flag under the same lock, arrives. Used by
``daain bench`` to measure the node's latency and rate.
"""

import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from daain_ros.io.image_codec import encode_image
from daain_ros.ros.fastdds import use_fastdds_profile

#: Deep queues: with many frames in flight, depth 1 would drop flags and statuses the client must count.
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class NodeClient:
    """Publishes stamped frames on ``topic`` and records when the flag and each frame's diagnostic arrive."""

    def __init__(self, frames_bgr, topic):
        use_fastdds_profile()  # the node's large-frame profile, before the participant exists
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("daain_node_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.publisher = self.node.create_publisher(Image, topic, RELIABLE)
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
    """A float from a diagnostic value, None when it is not one."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
