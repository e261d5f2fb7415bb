# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Starts the lifecycle node ``detector_node`` with ``config/detector.yaml`` and the large-frame Fast DDS profile.

    ros2 launch daain_ros detector.launch.py image_topic:=/front/image_raw namespace:=front \
        model_path:=/path/espnet_p_2_q_8.pth detector_path:=/path/detector device:=cuda

The node's outputs are relative names, so ``namespace:=front`` gives /front/daain/anomaly etc.
``model_path``, ``detector_path``, ``device``, ``backend`` and ``onnx_path`` override the config file only when
given. With ``autostart:=false`` the node waits unconfigured for a lifecycle manager; ``use_sim_time:=true``
stamps its diagnostics with ``/clock``'s time when a bag is replayed with ``--clock`` (its watchdog keeps wall
time).
When the node exits with an error, the launch shuts down and exits non-zero with the node's last error
line, unless ``respawn:=true`` restarts the node instead.

It uses launch_ros's plain ``Node`` action, not ``LifecycleNode``: the node manages its own lifecycle
(``autostart``) or is driven over its lifecycle services, and ``LifecycleNode`` would start an rclpy node
inside ``ros2 launch`` only for launch-side transition events, which nothing here uses.

SIGINT: launch reads signals from Python's wakeup descriptor, but Python's default SIGINT handler also
raises KeyboardInterrupt wherever the main thread is. Raised inside launch's own task, it ends that task;
``LaunchService.run`` then retries a finished task forever and never shuts down (ros2/launch#207 shows
the finished task). Three times in this package's CI, ``ros2 launch`` never reacted to SIGINT, not even
logging it, and died of the SIGTERM that followed. :func:`quiet_sigint` leaves SIGINT to the descriptor.
"""

import re
import signal
import threading

from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, SetEnvironmentVariable
from launch.event_handlers import OnProcessExit, OnProcessIO
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution

OVERRIDES = ("model_path", "detector_path", "device", "backend", "onnx_path")
COLOR_CODES = re.compile(r"\x1b\[[0-9;]*m")


class NodeFailed(RuntimeError):
    """Raised into the launch loop: ``ros2 launch`` logs it, shuts everything down and exits with 1."""


class ExitWatch:
    """Keeps the node's last error line; fails the launch with it when the node exits with an error."""

    def __init__(self):
        self.reason = "no error line"

    def on_output(self, event):
        for line in COLOR_CODES.sub("", event.text.decode(errors="replace")).splitlines():
            if "[ERROR]" in line or "[FATAL]" in line:
                self.reason = line.split("]: ", 1)[-1].strip()

    def on_exit(self, event, context):
        if event.returncode != 0:
            raise NodeFailed(f"{event.process_name} exited with code {event.returncode}: {self.reason}")


def quiet_sigint(_context):
    """SIGINT reaches launch only through its wakeup descriptor, never as KeyboardInterrupt (see above).

    The no-op handler keeps Python writing the signal to the descriptor. Only in ``ros2 launch``'s main
    thread: a launch service run elsewhere (launch_testing) cannot set handlers and keeps its own.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is \
            signal.default_int_handler:
        signal.signal(signal.SIGINT, lambda _signum, _frame: None)


def flag(context, name):
    value = LaunchConfiguration(name).perform(context).strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"launch argument {name}:={value!r}: expected true or false")
    return value == "true"


def detector_node(context):
    """The node, with only the override arguments that were given (an empty one keeps the config's)."""
    overrides = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    overrides = {name: value for name, value in overrides.items() if value}
    topic = LaunchConfiguration("image_topic").perform(context)
    respawn = flag(context, "respawn")
    node = Node(
        package="daain_ros",
        executable="detector_node",
        name="detector_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("config"), {**overrides, "autostart": flag(context, "autostart"),
                                                    "use_sim_time": flag(context, "use_sim_time")}],
        remappings=[("image", topic), ("image/compressed", topic.rstrip("/") + "/compressed")],
        output="screen",
        emulate_tty=True,
        respawn=respawn,
        respawn_delay=float(LaunchConfiguration("respawn_delay").perform(context)),
    )
    if respawn:
        return [node]
    watch = ExitWatch()
    return [
        node,
        RegisterEventHandler(OnProcessIO(target_action=node, on_stdout=watch.on_output, on_stderr=watch.on_output)),
        RegisterEventHandler(OnProcessExit(target_action=node, on_exit=watch.on_exit)),
    ]


def generate_launch_description():
    share = FindPackageShare("daain_ros")
    profile = PathJoinSubstitution([share, "config", "fastdds.xml"])
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=PathJoinSubstitution([share, "config", "detector.yaml"]),
                              description="parameter file of the node"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image; <topic>/compressed with "
                                          "image_transport:=compressed in the config)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its outputs"),
        DeclareLaunchArgument("device", default_value="",
                              description="auto, cpu, cuda or cuda:N; empty keeps the config's"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="ESPNet checkpoint; empty keeps the config's"),
        DeclareLaunchArgument("detector_path", default_value="",
                              description="detector directory; empty keeps the config's"),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto, torch or onnxruntime; empty keeps the config's"),
        DeclareLaunchArgument("onnx_path", default_value="",
                              description="for onnxruntime: a file of 'daain export'; empty keeps the config's"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="true: the node configures and activates itself; false: it waits "
                                          "unconfigured for a lifecycle manager"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true: ROS time from /clock (a bag replayed with --clock); the "
                                          "watchdog keeps wall time either way"),
        DeclareLaunchArgument("respawn", default_value="false",
                              description="true: restart the node whenever it exits; false: a node that exits "
                                          "with an error ends the launch with a non-zero exit code"),
        DeclareLaunchArgument("respawn_delay", default_value="2.0",
                              description="seconds before a respawn"),
        # 1.5 MB frames need a larger shared-memory segment than Fast DDS's 512 KB (see the profile); a
        # profile the user already chose wins.
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", default_value=profile)),
        OpaqueFunction(function=quiet_sigint),
        OpaqueFunction(function=detector_node),
    ])
