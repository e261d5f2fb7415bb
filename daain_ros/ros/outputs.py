# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What ``detector_node`` publishes, and the messages it builds.

The flag and the diagnostic go out in every lifecycle state (plain publishers: an unconfigured or inactive
monitor must still say "do not trust"); segmentation, overlay and score are lifecycle publishers, made at
configure and enabled only while the node is active.
"""

import threading

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32

from daain_ros.io.image_codec import encode_image
from daain_ros.ros import health
from daain_ros.ros.dds import other_publishers, publisher_names
from daain_ros.ros.qos import FLAG
from daain_ros.segmentation.cityscapes import overlay


def image_msg(array, encoding, header):
    return Image(header=header, **encode_image(array, encoding))


def segmentation_msgs(labels, image_bgr, header, color):
    """The train-id image and, when ``color``, the palette overlay on the frame at network size."""
    msgs = [image_msg(labels, "mono8", header)]
    if color:
        small = cv2.resize(image_bgr, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_AREA)
        msgs.append(image_msg(overlay(small, labels)[..., ::-1], "rgb8", header))
    return msgs


def diagnostic_status(verdict, values, name, hardware_id):
    status = DiagnosticStatus(level=bytes([verdict.level]), name=name, message=verdict.message,
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=key, value=value) for key, value in values]
    return status


class VerdictPublisher:
    """Publishes each verdict as the latched flag and one diagnostic status, and logs its cause (throttled).

    Two states of the ROS graph raise every verdict, which :meth:`check_graph` reads: another publisher on the
    flag's topic (a second detector without a namespace of its own, a replayed bag), whose "normal" a subscriber
    cannot tell from this node's, and more than one publisher on the judged frames' topic (a bag replayed onto
    the live camera's topic), whose frames interleave.
    """

    def __init__(self, node):
        self._node = node
        self._flag = node.create_publisher(Bool, "daain/anomaly", FLAG)
        self._diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._throttle = health.CauseThrottle()
        self._name = f"{node.get_fully_qualified_name()}: DAAIN anomaly detector"
        self._lock = threading.Lock()  # the heartbeat republishes on the executor while workers publish
        self._graph = ((), (), None)  # (other publishers on the flag, publishers on the input, the input topic)
        self._last = None

    def assert_alive(self):
        """Tells the flag's subscribers that the node is alive (publishing a flag tells them too)."""
        self._flag.assert_liveliness()

    def check_graph(self, input_topic=None):
        """Reads the flag's other publishers and ``input_topic``'s (None: not subscribed) from the ROS graph.

        Republishes the last verdict if they changed.
        """
        rivals = other_publishers(self._node, self._flag.topic_name)
        graph = (tuple(rivals), tuple(publisher_names(self._node, input_topic)) if input_topic else (), input_topic)
        with self._lock:
            if graph != self._graph:
                self._graph = graph
                if self._last is not None:
                    self._publish(*self._last)

    def publish(self, verdict, facts, hardware_id, stamp=None):
        """Publishes ``verdict``, raised while the flag's topic has other publishers or the input several.

        :param facts: (frame stamp, latency ms, frames processed, dropped, lost) for the diagnostic's values.
        :param stamp: the frame's header stamp, else now.
        """
        with self._lock:
            self._last = (verdict, facts, hardware_id, stamp)
            self._publish(*self._last)

    def _publish(self, verdict, facts, hardware_id, stamp):
        rivals, sources, input_topic = self._graph
        verdict = health.shared_flag(health.mixed_input(verdict, sources, input_topic), rivals, self._flag.topic_name)
        line = verdict.cause and self._throttle.filter(verdict.cause, verdict.message)
        if line and verdict.level == health.STALE:
            self._node.get_logger().warning(line)
        elif line:  # rclpy fixes a call site's severity, hence two calls
            self._node.get_logger().error(line)
        self._flag.publish(Bool(data=verdict.anomalous))
        status = diagnostic_status(verdict, health.key_values(verdict, *facts), self._name, hardware_id)
        array = DiagnosticArray(status=[status])
        array.header.stamp = stamp if stamp is not None else self._node.get_clock().now().to_msg()
        self._diagnostics.publish(array)


class ResultPublishers:
    """Segmentation, overlay (with ``color``) and score of each judged frame; :meth:`destroy` at cleanup."""

    def __init__(self, node, color):
        self._node = node
        self._segmentation = node.create_lifecycle_publisher(Image, "daain/segmentation", 5)
        self._color = node.create_lifecycle_publisher(Image, "daain/segmentation/color", 5) if color else None
        self._score = node.create_lifecycle_publisher(Float32, "daain/score", 10)

    def publish(self, result, image, header):
        labels, *color = segmentation_msgs(result.labels, image, header, self._color is not None)
        self._segmentation.publish(labels)
        for msg in color:
            self._color.publish(msg)
        self._score.publish(Float32(data=result.score))

    def destroy(self):
        for publisher in (self._segmentation, self._color, self._score):
            if publisher is not None:
                self._node.destroy_lifecycle_publisher(publisher)
