"""launch_testing test of ``launch/detector.launch.py`` on a ROS 2 install (``colcon test`` or
``launch_test test/test_launch.py``): the namespaced node comes up with the packaged config, latches
anomaly = true with a STALE diagnostic before any frame, judges a frame with its stamp on the remapped
topic, and exits cleanly when the launch shuts down.
"""

import time
import unittest
from pathlib import Path

import numpy as np
import pytest

launch_testing = pytest.importorskip(
    "launch_testing", reason="launch_testing comes with a ROS 2 install (ros-<distro>-launch-testing), "
                             "it is not installable from PyPI")

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from daain_ros.ros.qos import LATCHED  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOPIC = "/launch_test/image_raw"
NAMESPACE = "front"


@pytest.mark.launch_test
def generate_test_description():
    detector = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "detector.launch.py")),
        launch_arguments={"image_topic": TOPIC, "namespace": NAMESPACE, "device": "cpu"}.items())
    return LaunchDescription([detector, launch_testing.actions.ReadyToTest()])


class TestDetectorLaunch(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("daain_launch_test")

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def spin_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return predicate()

    def test_node_latches_stale_then_judges_a_stamped_frame(self, proc_output):
        flags, stale, segmentation = [], [], []
        self.node.create_subscription(Bool, f"/{NAMESPACE}/daain/anomaly", lambda m: flags.append(m.data), LATCHED)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: stale.extend(
            s for s in m.status if s.name.startswith(f"/{NAMESPACE}/detector_node:")
            and s.level == DiagnosticStatus.STALE), 10)
        self.node.create_subscription(Image, f"/{NAMESPACE}/daain/segmentation", segmentation.append, 10)
        proc_output.assertWaitFor(f"judging {TOPIC}", timeout=120)
        self.assertTrue(self.spin_until(lambda: flags and stale, 30), "no latched flag or STALE diagnostic")
        self.assertIs(flags[0], True)

        publisher = self.node.create_publisher(Image, TOPIC, 10)
        frame = np.random.default_rng(0).integers(0, 256, (256, 512, 3), np.uint8)
        sent = set()
        for i in range(1, 21):  # best-effort input: repeat until one frame is judged
            msg = Image(height=256, width=512, encoding="bgr8", step=512 * 3, data=frame.tobytes())
            msg.header.stamp.sec, msg.header.frame_id = i, "launch_test_camera"
            publisher.publish(msg)
            sent.add(i)
            if self.spin_until(lambda: segmentation, 1.0):
                break
        self.assertTrue(segmentation, "no segmentation for 20 frames")
        self.assertIn(segmentation[0].header.stamp.sec, sent)
        self.assertEqual(segmentation[0].header.frame_id, "launch_test_camera")
        self.assertEqual(segmentation[0].encoding, "mono8")


@launch_testing.post_shutdown_test()
class TestDetectorShutdown(unittest.TestCase):

    def test_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
