# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""launch_testing test of ``ros2 launch daain_ros detector.launch.py`` as a user runs it.

Two ``ros2 launch`` processes with the packaged default model and detector: one namespaced, which must
reach the active lifecycle state, judge frames on the remapped topic, raise the flag when deactivated and
end cleanly on SIGINT; one with a missing model, which must exit non-zero within 30 s with the node's
reason. Needs the package installed in an ament prefix (``colcon build``): ``test_colcon.py`` runs it with
``colcon test``; ``launch_test test/test_launch.py`` runs it in a sourced workspace.
"""

import os
import re
import time
import unittest

import numpy as np
import pytest

launch_testing = pytest.importorskip(
    "launch_testing", reason="launch_testing comes with a ROS 2 install, or from ../shared/ros2 with `make setup`")

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import ExecuteProcess  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool, Float32  # noqa: E402

from daain_ros.demo.default_assets import DEFAULT_DIR, MODEL_FILE  # noqa: E402
from daain_ros.ros.health import LEVEL_NAMES  # noqa: E402
from daain_ros.ros.qos import LATCHED  # noqa: E402

TOPIC = "/launch_test/image_raw"
NAMESPACE = "front"
NODE = f"/{NAMESPACE}/detector_node"
MISSING_MODEL = "/nonexistent/espnet_missing.safetensors"
FAILED_START_S = 30.0


def installed():
    try:
        get_package_share_directory("daain_ros")
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset
        return False
    return True


def ros2_launch(name, *arguments):
    """``ros2 launch`` of the package's launch file, given 60 s after SIGINT before SIGTERM.

    60 s leaves a loaded 2-core VM room; a hang still fails the shutdown test. (Three times in CI, before the
    launch file kept SIGINT from raising KeyboardInterrupt, ``ros2 launch`` had not even logged the SIGINT
    after 15 s or 60 s: see the launch file's docstring.)
    """
    return ExecuteProcess(cmd=["ros2", "launch", "daain_ros", "detector.launch.py", "device:=cpu",
                               f"detector_path:={DEFAULT_DIR / 'detector'}", *arguments],
                          name=name, output="screen", sigterm_timeout="60")


@pytest.mark.launch_test
@pytest.mark.skipif(not installed(), reason="daain_ros is not installed in an ament prefix; test_colcon.py runs "
                                            "this test in a colcon workspace")
def generate_test_description():
    # simulated time with no /clock, as a replayed bag that has ended or is paused leaves it
    launch = ros2_launch("detector_launch", f"model_path:={DEFAULT_DIR / MODEL_FILE}", f"image_topic:={TOPIC}",
                         f"namespace:={NAMESPACE}", "use_sim_time:=true")
    broken = ros2_launch("broken_launch", f"model_path:={MISSING_MODEL}", "namespace:=broken")
    description = LaunchDescription([launch, broken, launch_testing.actions.ReadyToTest()])
    return description, {"launch": launch, "broken": broken, "started": time.monotonic()}


class Probe:
    """A test-side node in its own context: calls the lifecycle services and records the outputs."""

    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("daain_launch_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.flags, self.statuses, self.segmentation, self.scores = [], [], [], []
        sub = self.node.create_subscription
        sub(Bool, f"{NAMESPACE}/daain/anomaly", lambda m: self.flags.append(m.data), LATCHED)
        sub(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        sub(Image, f"{NAMESPACE}/daain/segmentation", self.segmentation.append, 10)
        sub(Float32, f"{NAMESPACE}/daain/score", self.scores.append, 10)
        self.frames = self.node.create_publisher(Image, TOPIC, 10)
        self.get_state = self.node.create_client(GetState, f"{NODE}/get_state")
        self.change_state = self.node.create_client(ChangeState, f"{NODE}/change_state")
        self.get_parameters = self.node.create_client(GetParameters, f"{NODE}/get_parameters")

    def _on_diagnostics(self, msg):
        self.statuses += [(LEVEL_NAMES[s.level[0]], s.message) for s in msg.status if s.name.startswith(NODE + ":")]

    def spin_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not (done := predicate()) and (left := deadline - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(0.05, left))
        return done

    def call(self, client, request, timeout=30.0):
        assert self.spin_until(client.service_is_ready, timeout), f"{client.srv_name} not available"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), f"no answer from {client.srv_name}"
        return future.result()

    def state(self, timeout=30.0):
        return self.call(self.get_state, GetState.Request(), timeout).current_state.label

    def parameter(self, name):
        return self.call(self.get_parameters, GetParameters.Request(names=[name])).values[0]

    def transition(self, label):
        request = ChangeState.Request()
        request.transition.label = label
        return self.call(self.change_state, request).success

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class TestDetectorLaunch(unittest.TestCase):
    """Active tests; unittest runs them in name order, which is the order of the lifecycle."""

    @classmethod
    def setUpClass(cls):
        cls.probe = Probe()

    @classmethod
    def tearDownClass(cls):
        cls.probe.close()

    def test_1_broken_launch_exits_non_zero_in_time_with_the_reason(self, proc_info, proc_output, broken, started):
        left = FAILED_START_S - (time.monotonic() - started)
        proc_info.assertWaitForShutdown(process=broken, timeout=max(1.0, left))
        self.assertNotEqual(proc_info[broken].returncode, 0)
        proc_output.assertWaitFor(re.compile("exited with code 2: cannot start: " + re.escape(MISSING_MODEL)),
                                  process=broken, timeout=5, stream="stdout")  # ros2 launch logs to stdout

    def test_2_node_reaches_the_active_state(self):
        probe = self.probe
        # get_state answers while autostart configures, which exports the monitor for ONNX Runtime (start to
        # configured took 40 s on a slow 2-core VM)
        self.assertTrue(probe.spin_until(lambda: probe.state(timeout=10) == "active", 180),
                        "node did not become active")
        self.assertTrue(probe.spin_until(lambda: probe.flags, 10), "no latched flag")
        self.assertIs(probe.flags[-1], True)  # no frame yet: STALE, anomaly true

    def test_3_frames_in_give_outputs_out(self):
        probe = self.probe
        frame = np.random.default_rng(0).integers(0, 256, (256, 512, 3), np.uint8)
        for i in range(1, 31):  # a best-effort subscription: repeat until a frame is judged
            msg = Image(height=256, width=512, encoding="bgr8", step=512 * 3, data=frame.tobytes())
            msg.header.stamp.sec, msg.header.frame_id = i, "launch_test_camera"
            probe.frames.publish(msg)
            if probe.spin_until(lambda: probe.segmentation and probe.scores, 1.0):
                break
        self.assertTrue(probe.segmentation, "no segmentation for 30 frames")
        first = probe.segmentation[0]
        self.assertEqual((first.header.frame_id, first.encoding, first.width, first.height),
                         ("launch_test_camera", "mono8", 512, 256))
        self.assertTrue(np.isfinite(probe.scores[0].data))
        self.assertTrue(probe.spin_until(lambda: any(level in ("OK", "WARN", "ERROR") and "no frame" not in text
                                                     for level, text in probe.statuses), 5), probe.statuses)

    def test_3a_silence_is_stale_while_sim_time_stands_still(self):
        """The launch set use_sim_time and nothing publishes /clock: the watchdog must still run."""
        probe = self.probe
        self.assertIs(probe.parameter("use_sim_time").bool_value, True)
        statuses = len(probe.statuses)
        self.assertTrue(probe.spin_until(lambda: any(level == "STALE" and text.startswith("no input on")
                                                     for level, text in probe.statuses[statuses:]), 10),
                        probe.statuses[statuses:])
        self.assertIs(probe.flags[-1], True)

    def test_4_deactivate_raises_the_flag(self):
        probe = self.probe
        flags, statuses = len(probe.flags), len(probe.statuses)
        self.assertTrue(probe.transition("deactivate"))
        self.assertEqual(probe.state(), "inactive")
        self.assertTrue(probe.spin_until(lambda: len(probe.flags) > flags, 10), "no flag after deactivate")
        self.assertIs(probe.flags[-1], True)
        self.assertTrue(probe.spin_until(lambda: ("STALE", "not judging: inactive (deactivated)")
                                         in probe.statuses[statuses:], 10), probe.statuses[statuses:])
        self.assertTrue(probe.spin_until(lambda: probe.frames.get_subscription_count() == 0, 10),
                        "an inactive node still subscribes to the frames")


@launch_testing.post_shutdown_test()
class TestDetectorShutdown(unittest.TestCase):
    """After launch_testing has sent SIGINT to the running ``ros2 launch``."""

    def test_sigint_ends_the_launch_and_its_node_cleanly(self, proc_info, proc_output, launch):
        launch_testing.asserts.assertExitCodes(proc_info, process=launch)
        output = "".join(io.text.decode(errors="replace") for io in proc_output[launch])
        started = re.search(r"\[detector_node-1\]: process started with pid \[(\d+)\]", output)
        self.assertIsNotNone(started, "ros2 launch did not report the node's pid")
        pid = started.group(1)
        self.assertIn(f"[detector_node-1]: process has finished cleanly [pid {pid}]", output)
        with self.assertRaises(ProcessLookupError):  # not left behind
            os.kill(int(pid), 0)

    def test_broken_launch_exits_with_1(self, proc_info, broken):
        launch_testing.asserts.assertExitCodes(proc_info, [1], process=broken)
