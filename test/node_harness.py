# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""A test-side ROS 2 client for ``detector_node``: starts the node process, sends frames, records outputs.

Shared by the node tests; it uses real rclpy and DDS (no mocks) in its own rclpy context, and waits
only in bounded ``spin_once`` loops.
"""

import contextlib
import os
import threading
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
# The same large-frame profile the node applies, so 1.5 MB frames cross the process boundary intact.
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds.xml"))

import rclpy  # noqa: E402 (after the Fast DDS profile is chosen)
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import SetParametersAtomically  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Bool, Float32  # noqa: E402

from daain_ros.demo.default_assets import DEFAULT_DIR, MODEL_FILE  # noqa: E402
from daain_ros.io.image_codec import encode_image  # noqa: E402
from daain_ros.ros import processes  # noqa: E402
from daain_ros.ros.health import LEVEL_NAMES  # noqa: E402
from daain_ros.ros.node import DetectorNode  # noqa: E402
from daain_ros.ros.qos import LATCHED  # noqa: E402

TOPIC = "/test_camera/image_raw"
NODE = "/detector_node"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
MODEL, DETECTOR = DEFAULT_DIR / MODEL_FILE, DEFAULT_DIR / "detector"


def node_command(*ros_args, **params):
    """``detector_node`` on the test topics (raw and compressed) with ``-p name:=value`` per parameter.

    The backend is torch unless given: the default (auto) exports the graph for ONNX Runtime at each configure.
    """
    params.setdefault("backend", "torch")
    return processes.node_command(TOPIC, "-r", f"image/compressed:={TOPIC}/compressed", *ros_args, **params)


def start_node(log_path, **params):
    """``detector_node`` with ``params`` as a ``ChildProcess`` logging to ``log_path``; stop it with ``stop()``."""
    return processes.ChildProcess(node_command(**params), log_path)


@contextlib.contextmanager
def running_node(log_path, client_name, while_starting=None, **params):
    """``detector_node`` with ``params`` and a ``Client`` named ``client_name``: yields (node process, client).

    ``while_starting`` is called while the node starts; on leaving, the node must still be alive and must exit
    with 0 on SIGINT.
    """
    child = start_node(log_path, **params)
    client = Client(client_name)
    try:
        if while_starting is not None:
            while_starting()
        client.wait_for_node(child.process)
        yield child.process, client
        assert child.process.poll() is None, f"detector_node died:\n{log_path.read_text()[-3000:]}"
    finally:
        client.close()
        code = child.stop()
    assert code == 0, f"detector_node exited with {code} on SIGINT:\n{log_path.read_text()[-3000:]}"


@contextlib.contextmanager
def spun_node(client_name, **parameters):
    """An active in-process node spun by its own executor on a thread, and a ``Client``: (node, executor, client).

    The node is :func:`in_process_node`'s, configured, activated and spun as ``detector_node`` spins it; all three
    are torn down on leaving.
    """
    context = Context()
    node = in_process_node(context, **parameters)
    executor = SingleThreadedExecutor(context=context)
    client = Client(client_name)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        yield node, executor, client
    finally:
        client.close()
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def in_process_node(context, namespace="", **parameters):
    """A ``DetectorNode`` in this process on TOPIC with the default model and detector, not started.

    The backend is torch unless given: the default (auto) exports the graph for ONNX Runtime at each configure.
    A ``namespace`` moves its outputs (``NAMESPACE/daain/anomaly``, ...) away from other tests' nodes.
    """
    rclpy.init(context=context)
    parameters = {"model_path": str(MODEL), "detector_path": str(DETECTOR), "backend": "torch", **parameters}
    return DetectorNode(context=context, namespace=namespace, cli_args=["--ros-args", "-r", f"image:={TOPIC}"],
                        parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])


def stamp_text(stamp):
    return f"{stamp.sec}.{stamp.nanosec:09d}"


def parse_status(status):
    return {"level": LEVEL_NAMES[status.level[0]], "message": status.message,
            **{kv.key: kv.value for kv in status.values}}


class Client:
    """Publishes frames on TOPIC and records everything the node publishes, keyed by frame stamp.

    With ``frames=False`` it publishes no frames (another source does) and has no publisher on TOPIC: the node
    raises its flag while the topic has more than one.
    """

    def __init__(self, name="daain_test_client", frames=True):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.publishers = ()
        if frames:
            self.image_pub = self.node.create_publisher(Image, TOPIC, RELIABLE)
            self.compressed_pub = self.node.create_publisher(CompressedImage, TOPIC + "/compressed", RELIABLE)
            self.publishers = (self.image_pub, self.compressed_pub)
        self.segmentation, self.color, self.verdicts = {}, {}, {}
        self.anomaly, self.scores, self.statuses = [], [], []
        self._frames = 0
        sub = self.node.create_subscription
        sub(Image, "/daain/segmentation", lambda m: self.segmentation.__setitem__(stamp_text(m.header.stamp), m),
            RELIABLE)
        sub(Image, "/daain/segmentation/color", lambda m: self.color.__setitem__(stamp_text(m.header.stamp), m),
            RELIABLE)
        sub(Bool, "/daain/anomaly", lambda m: self.anomaly.append(m.data), LATCHED)
        sub(Float32, "/daain/score", lambda m: self.scores.append(m.data), RELIABLE)
        sub(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith(NODE + ":"):
                verdict = parse_status(status)
                self.statuses.append(verdict)
                self.verdicts.setdefault(verdict["frame stamp"], []).append(verdict)

    def spin_until(self, predicate, timeout):
        """Spins until ``predicate()`` holds or ``timeout`` s pass; returns its last value."""
        deadline = time.monotonic() + timeout
        while not (done := predicate()) and (left := deadline - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(0.02, left))
        return done

    def wait_for_node(self, process, timeout=90.0):
        """Until the node subscribes to the frames and its latched flag has arrived."""
        ready = self.spin_until(lambda: process.poll() is not None or (self._subscribed() and self.anomaly), timeout)
        assert ready and process.poll() is None, f"detector_node did not come up (exit code {process.poll()})"

    def _subscribed(self):
        """Whether the node's frame subscription is matched to this client's publishers, or seen in the graph."""
        if self.publishers:  # matched: the next frame sent reaches it
            return any(pub.get_subscription_count() for pub in self.publishers)
        return any(self.node.count_subscribers(topic) for topic in (TOPIC, TOPIC + "/compressed"))

    def next_header(self, msg):
        self._frames += 1
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + self._frames, 7 * self._frames
        msg.header.frame_id = "test_camera"
        return stamp_text(msg.header.stamp)

    def send(self, msg):
        """Stamps and publishes ``msg``; returns its stamp text."""
        stamp = self.next_header(msg)
        (self.compressed_pub if isinstance(msg, CompressedImage) else self.image_pub).publish(msg)
        return stamp

    def send_frame(self, image_bgr, encoding="bgr8"):
        return self.send(frame_msg(image_bgr, encoding))

    def verdict(self, stamp, timeout=30.0):
        """The diagnostic the node published for the frame stamped ``stamp``."""
        assert self.spin_until(lambda: stamp in self.verdicts, timeout), f"no verdict for frame {stamp}"
        return self.verdicts[stamp][0]

    def anomaly_after(self, count, value, timeout=5.0):
        """Whether a flag equal to ``value`` arrives among the flags after the first ``count``."""
        return self.spin_until(lambda: value in self.anomaly[count:], timeout)

    def call(self, srv_type, name, request, timeout=10.0):
        """Calls the node's service ``name`` and returns the response."""
        client = self.node.create_client(srv_type, f"{NODE}/{name}")
        try:
            assert self.spin_until(client.service_is_ready, timeout), f"service {name} not ready"
            future = client.call_async(request)
            assert self.spin_until(future.done, timeout), f"no answer from the service {name}"
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, timeout=10.0, **values):
        request = SetParametersAtomically.Request(
            parameters=[Parameter(name, value=str(value) if isinstance(value, Path) else value).to_parameter_msg()
                        for name, value in values.items()])
        return self.call(SetParametersAtomically, "set_parameters_atomically", request, timeout).result

    def lifecycle_state(self, timeout=30.0):
        """The node's lifecycle state: unconfigured, inactive, active or finalized."""
        return self.call(GetState, "get_state", GetState.Request(), timeout).current_state.label

    def transition(self, label, timeout=60.0):
        """Asks for the lifecycle transition ``label`` (configure, activate, ...); whether it succeeded."""
        request = ChangeState.Request()
        request.transition.label = label
        return self.call(ChangeState, "change_state", request, timeout).success

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def frame_msg(image, encoding="bgr8"):
    """A sensor_msgs/Image of a BGR frame, converted to ``encoding`` (rgb8, bgr8, mono8, rgba8, bgra8)."""
    conversions = {"rgba8": cv2.COLOR_BGR2RGBA, "bgra8": cv2.COLOR_BGR2BGRA}
    if encoding in conversions:
        pixels = cv2.cvtColor(image, conversions[encoding])
        return Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, step=pixels.shape[1] * 4,
                     data=pixels.tobytes())
    if encoding == "mono8":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return Image(**encode_image(image, encoding))
