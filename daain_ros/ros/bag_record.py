# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Record live topics with rclpy into a rosbag2 bag, like ``ros2 bag record`` (``daain bag record``).

A topic is subscribed once a publisher of it appears, with its publishers' message type, and its
messages are written as the CDR bytes that arrived, at their receive time (the log time; header stamps
stay as published). QoS follows rosbag2: reliable when every publisher offers reliable, else best effort
(which receives from both), and transient local when every publisher offers it, so the latched
``/daain/anomaly`` state is recorded too. SIGINT, SIGTERM, a duration or a message count stop the
recording; the bag is always closed with its metadata.
"""

import sys
import time
from functools import partial
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tqdm import tqdm

from daain_ros.errors import DaainError, DataSourceError
from daain_ros.io.rosbag import BagWriter, typestore
from daain_ros.ros.dds import POLL_S, StopSignals, dds_node, message_class
from daain_ros.ros.processes import ALL_SUBSCRIBED
from daain_ros.ros.qos import RELIABILITY

DEPTH = 50
DISCOVERY_PERIOD_S = 0.1


class RecordingBag(BagWriter):
    """A bag written from serialized messages as they arrive."""

    def add_serialized(self, topic, msgtype, stamp_ns, raw):
        connection = self._connections.get(topic)
        if connection is None:
            if msgtype not in typestore().types:
                raise DataSourceError(f"topic {topic}: rosbags does not know type {msgtype}; cannot record it")
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = connection
        self._writer.write(connection, int(stamp_ns), raw)


def subscription_qos(publisher_qos, mode="auto"):
    """The QoS that receives from all of these publishers (rosbag2's rule in ``auto`` mode)."""
    def all_offer(policy, value):
        return bool(publisher_qos) and all(getattr(q, policy) == value for q in publisher_qos)

    if mode == "auto":
        mode = "reliable" if all_offer("reliability", ReliabilityPolicy.RELIABLE) else "best_effort"
    latched = all_offer("durability", DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=DEPTH, reliability=RELIABILITY[mode],
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class Recorder:
    """Subscribes to each wanted topic when it appears and writes what arrives."""

    def __init__(self, node, bag, topics, qos_mode, progress):
        self.node, self.bag, self.qos_mode, self.progress = node, bag, qos_mode, progress
        self.counts = dict.fromkeys(topics, 0)
        self.qos = {}
        self._waiting = list(topics)
        self._subscriptions = []
        self._timer = node.create_timer(DISCOVERY_PERIOD_S, self.discover)

    @property
    def total(self):
        return sum(self.counts.values())

    def discover(self):
        for topic in list(self._waiting):
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            msgtype = publishers[0].topic_type
            qos = subscription_qos([p.qos_profile for p in publishers], self.qos_mode)
            self._subscriptions.append(self.node.create_subscription(
                message_class(msgtype), topic, partial(self._on_message, topic, msgtype), qos, raw=True))
            self.qos[topic] = f"{qos.reliability.name.lower()}, {qos.durability.name.lower()}"
            self._waiting.remove(topic)
            print(f"daain bag record: subscribed to {topic} ({self.qos[topic]})", file=sys.stderr, flush=True)
        if not self._waiting:
            self._timer.cancel()
            print(ALL_SUBSCRIBED, file=sys.stderr, flush=True)

    def _on_message(self, topic, msgtype, raw, info):
        self.bag.add_serialized(topic, msgtype, info.get("received_timestamp") or time.time_ns(), raw)
        self.counts[topic] += 1
        self.progress.update()


def _check(out, topics, duration, max_messages):
    if out.exists():
        raise DataSourceError(f"{out} exists already; a bag is only recorded to a new path")
    if duration is not None and not duration > 0:
        raise DaainError(f"--duration {duration}: expected a positive number of seconds")
    if max_messages is not None and max_messages < 1:
        raise DaainError(f"--max-messages {max_messages}: expected a positive number")
    bad = [t for t in topics if not t.startswith("/")]
    if bad:
        raise DaainError(f"topics {', '.join(bad)}: expected absolute names (/daain/anomaly)")


def _finished(recorder, stop, deadline, max_messages):
    return (stop.stopped or (deadline is not None and time.monotonic() >= deadline)
            or (max_messages is not None and recorder.total >= max_messages))


def _drain(executor, recorder, idle_spins=3, most=10_000):
    """Writes what has arrived already, so that stopping loses no delivered message."""
    idle = 0
    for _ in range(most):  # bounded: a fast publisher must not keep the recorder from stopping
        before = recorder.total
        executor.spin_once(timeout_sec=0)
        idle = idle + 1 if recorder.total == before else 0
        if idle == idle_spins:
            return


def record_bag(out, topics, *, storage="mcap", qos="auto", duration=None, max_messages=None):
    """Records ``topics`` to a new bag ``out`` until SIGINT/SIGTERM, ``duration`` or ``max_messages``.

    :param qos: subscription reliability: ``auto`` (rosbag2's rule, see :func:`subscription_qos`),
        ``reliable`` or ``best_effort``.
    :param duration: seconds to record, or None for no limit.
    :param max_messages: messages to record in all, or None for no limit.
    :returns: ``{"bag", "messages", "qos", "never_published", "wall_s", "stopped_by_signal"}``.
    """
    out, topics = Path(out), list(topics)
    _check(out, topics, duration, max_messages)
    started = time.monotonic()
    deadline = None if duration is None else started + duration
    with StopSignals() as stop, dds_node("daain_bag_recorder") as node, RecordingBag(out, storage) as bag, \
            tqdm(desc=f"record {out.name}", unit="msg") as bar:
        recorder = Recorder(node, bag, topics, qos, bar)
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        print(f"daain bag record: recording {', '.join(topics)} to {out}", file=sys.stderr, flush=True)
        while not _finished(recorder, stop, deadline, max_messages):
            executor.spin_once(timeout_sec=POLL_S)
        if max_messages is None or recorder.total < max_messages:
            _drain(executor, recorder)
        executor.shutdown()
    return {"bag": str(out), "messages": recorder.counts, "qos": recorder.qos,
            "never_published": sorted(t for t in topics if t not in recorder.qos),
            "wall_s": round(time.monotonic() - started, 3), "stopped_by_signal": stop.signal is not None}
