"""Starting and stopping the package's own programs as child processes (the demo, the benchmark, tests).

ROS-free: the children run rclpy, this module only builds their command lines and stops them the way
``ros2 launch`` does.
"""

import signal
import subprocess
import sys
from pathlib import Path

STOP_S = 15.0
#: What ``daain bag record`` prints on stderr once it records every topic it was given (``daain demo`` waits
#: for it before playing, so no verdict is lost).
ALL_SUBSCRIBED = "daain bag record: subscribed to every topic"


def console_script(script, module):
    """A console script beside this interpreter (the venv), else ``python -m module``."""
    path = Path(sys.executable).with_name(script)
    return [str(path)] if path.is_file() else [sys.executable, "-m", module]


def node_command(image_topic, *ros_args, **params):
    """``detector_node --ros-args`` with its image topic remapped and ``-p name:=value`` per parameter."""
    args = [*console_script("detector_node", "daain_ros.ros.node"), "--ros-args", "-r", f"image:={image_topic}",
            *ros_args]
    for name, value in params.items():
        args += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    return args


def stop_process(process, timeout=STOP_S):
    """SIGINT, as Ctrl-C or ros2 launch would, then SIGKILL after ``timeout`` s; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
