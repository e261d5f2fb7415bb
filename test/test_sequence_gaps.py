# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Frames that never reach the callback are counted lost, from real rclpy message info over Fast DDS."""

import time

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from daain_ros.ros.sequence_gaps import SequenceGaps


def test_frames_overwritten_in_the_subscriptions_queue_are_counted_lost_per_publisher():
    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("daain_test_sequence_gaps", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        gaps, taken = SequenceGaps(), []
        node.create_subscription(String, "frames", lambda msg, info: (gaps.arrived(info), taken.append(msg.data)),
                                 QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        first, second = (node.create_publisher(String, "frames", QoSProfile(depth=50)) for _ in range(2))
        deadline = time.monotonic() + 10
        while first.get_subscription_count() < 1 or second.get_subscription_count() < 1:
            assert time.monotonic() < deadline, "the publishers never matched the subscription"
            executor.spin_once(timeout_sec=0.05)

        def burst(publisher, count, name):
            """Publishes ``count`` frames before the executor takes any; returns the frames taken after."""
            before = len(taken)
            for i in range(count):
                publisher.publish(String(data=f"{name}{i}"))
            time.sleep(0.5)  # the samples arrive and overwrite each other in the subscription's queue of one
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            return taken[before:]

        assert burst(first, 1, "a") == ["a0"] and gaps.lost == 0
        assert burst(first, 10, "b") == ["b9"] and gaps.lost == 9  # the newest frame is kept, older ones lost
        assert burst(second, 1, "c") == ["c0"] and gaps.lost == 9  # another publisher numbers from 1
        assert burst(second, 3, "d") == ["d2"] and gaps.lost == 11
        gaps.restart()  # as the node does when it subscribes again: what it missed meanwhile was not sent to it
        assert burst(first, 4, "e") == ["e3"] and gaps.lost == 11
        assert burst(first, 2, "f") == ["f1"] and gaps.lost == 12
    finally:
        rclpy.try_shutdown(context=context)
