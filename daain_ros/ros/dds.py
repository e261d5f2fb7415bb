# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""rclpy plumbing shared by ``daain bag play``, ``daain bag record`` and the node.

The large-frame Fast DDS profile the node uses, an rclpy context whose shutdown we control (SIGINT and
SIGTERM only set a flag, so a bag is always closed cleanly), a bounded teardown, message classes by type
name, and who publishes on a topic.
"""

import faulthandler
import importlib
import signal
import time
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.signals import SignalHandlerOptions

from daain_ros.errors import DaainError
from daain_ros.ros.fastdds import use_fastdds_profile

#: The longest a wait sleeps before it looks at the stop flag again.
POLL_S = 0.05
#: How long destroying the node and its DDS participant may take before the process is ended.
TEARDOWN_TIMEOUT_S = 20.0
STDERR_FD = 2


def message_class(msgtype):
    """The rclpy message class of ``pkg/msg/Name`` (what rosidl_runtime_py's get_message does)."""
    package, _, name = msgtype.partition("/msg/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise DaainError(f"message type {msgtype}: no Python message class for it here "
                         f"({package}.msg.{name}); install that package's ROS 2 messages") from exc


def publisher_names(node, topic):
    """The fully qualified names of the nodes that publish on ``topic``, one per publisher, sorted."""
    return sorted(f"{info.node_namespace.rstrip('/')}/{info.node_name}"
                  for info in node.get_publishers_info_by_topic(topic))


def other_publishers(node, topic):
    """:func:`publisher_names` without ``node`` itself (once: a node may publish twice on one topic)."""
    names = publisher_names(node, topic)
    own = node.get_fully_qualified_name()
    if own in names:
        names.remove(own)
    return names


class StopSignals:
    """While active, SIGINT and SIGTERM set :attr:`signal` instead of interrupting the program."""

    def __init__(self):
        self.signal = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.signal = signum

    @property
    def stopped(self):
        return self.signal is not None

    def sleep_until(self, deadline):
        """Sleeps until ``time.monotonic()`` reaches ``deadline`` or a stop signal arrives."""
        while not self.stopped and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(POLL_S, left))

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


@contextmanager
def exit_if_stuck(seconds):
    """Ends the process with status 1 and every thread's traceback on stderr if the block outlasts ``seconds``.

    Fast DDS 3.2 can deadlock while a participant is destroyed and a peer's endpoints leave at the same moment
    (seen about once in 40 play/record round trips; gdb: the main thread waits in
    ``DomainParticipant::set_listener`` for a discovery callback, which waits for a lock the main thread holds).
    The stuck thread holds the GIL, so no Python thread or signal handler can run: faulthandler's watchdog is a
    C thread.
    """
    faulthandler.dump_traceback_later(seconds, exit=True, file=STDERR_FD)  # fd 2 even where sys.stderr is replaced
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@contextmanager
def dds_node(name):
    """An rclpy node in its own context, with the Fast DDS profile for large frames unless one is set.

    The context parses no command line (``daain bag play --topic-remap /a:=/b`` is not a ROS remap rule), and
    the teardown is bounded (:func:`exit_if_stuck`): whatever the block wrote is complete by then.
    """
    use_fastdds_profile()
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = rclpy.create_node(name, context=context)
        yield node
    finally:
        with exit_if_stuck(TEARDOWN_TIMEOUT_S):
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown(context=context)
