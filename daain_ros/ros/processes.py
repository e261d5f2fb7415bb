# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Starting and stopping the package's own programs as child processes (the demo, the benchmark, tests).

ROS-free: the children run rclpy, this module only builds their command lines, starts them with their
log file and environment, and stops them the way ``ros2 launch`` does.
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


class ChildProcess:
    """A program in its own process, its output (after its command line) in a log file, always stopped.

    SIGINT first, as Ctrl-C or ``ros2 launch`` would, so a node shuts down cleanly, then SIGKILL.

    A context manager that stops the program on leaving; :meth:`stop` may come earlier.

    :param env: the child's environment; None inherits this process's.
    """

    def __init__(self, command, log_path, env=None):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "w")
        self._log.write(" ".join(map(str, command)) + "\n")
        self._log.flush()
        try:
            self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        except OSError:
            self._log.close()
            raise

    def stop(self, timeout=STOP_S):
        """SIGINT, then SIGKILL if it still runs after ``timeout`` s; closes the log; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines=1):
        """The last ``lines`` non-blank lines of the log, joined by `` | ``.

        The command line when the program printed nothing.
        """
        text = self.log_path.read_text(errors="replace")
        return " | ".join([line for line in text.splitlines() if line.strip()][-lines:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
