"""Starts ``detector_node`` with ``config/detector.yaml`` and the large-frame Fast DDS profile.

    ros2 launch daain_ros detector.launch.py image_topic:=/front/image_raw namespace:=front \
        model_path:=/path/espnet_p_2_q_8.pth detector_path:=/path/detector device:=cuda

The node's outputs are relative names, so ``namespace:=front`` gives /front/daain/anomaly etc.
``model_path``, ``detector_path`` and ``device`` override the config file only when given.
"""

from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution

OVERRIDES = ("model_path", "detector_path", "device")


def detector_node(context):
    """The node, with only the override arguments that were given (an empty one keeps the config's)."""
    overrides = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    overrides = {name: value for name, value in overrides.items() if value}
    topic = LaunchConfiguration("image_topic").perform(context)
    return [Node(
        package="daain_ros",
        executable="detector_node",
        name="detector_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("config")] + ([overrides] if overrides else []),
        remappings=[("image", topic), ("image/compressed", topic.rstrip("/") + "/compressed")],
        output="screen",
        emulate_tty=True,
    )]


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
        # 1.5 MB frames need a larger shared-memory segment than Fast DDS's 512 KB (see the profile); a
        # profile the user already chose wins.
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", default_value=profile)),
        OpaqueFunction(function=detector_node),
    ])
