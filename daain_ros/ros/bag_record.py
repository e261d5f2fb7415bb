"""``daain bag record``: record live topics with rclpy into a rosbag2 bag, like ``ros2 bag record``.

A topic is subscribed once a publisher of it appears, with its publishers' message type, and its
messages are written as the CDR bytes that arrived, at their receive time (the log time; header stamps
stay as published). QoS follows rosbag2: reliable when every publisher offers reliable, else best effort
(which receives from both), and transient local when every publisher offers it, so the latched
``/daain/anomaly`` state is recorded too. SIGINT, SIGTERM, ``--duration`` or ``--max-messages`` stop
the recording; the bag is always closed with its metadata.
"""

import json
import sys
import time
from functools import partial

from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tqdm import tqdm

from daain_ros.ros.dds import POLL_S, StopSignals, dds_node, message_class
from daain_ros.io.rosbag import BagWriter, typestore
from daain_ros.errors import DaainError, DataSourceError
from daain_ros.ros.processes import ALL_SUBSCRIBED

DEPTH = 50
DISCOVERY_PERIOD_S = 0.1
_RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}


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
        reliable = all_offer("reliability", ReliabilityPolicy.RELIABLE)
        reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    else:
        reliability = _RELIABILITY[mode]
    latched = all_offer("durability", DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=DEPTH, reliability=reliability,
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


def _check(args):
    if args.out.exists():
        raise DataSourceError(f"{args.out} exists already; a bag is only recorded to a new path")
    if args.duration is not None and not args.duration > 0:
        raise DaainError(f"--duration {args.duration}: expected a positive number of seconds")
    if args.max_messages is not None and args.max_messages < 1:
        raise DaainError(f"--max-messages {args.max_messages}: expected a positive number")
    bad = [t for t in args.topics if not t.startswith("/")]
    if bad:
        raise DaainError(f"topics {', '.join(bad)}: expected absolute names (/daain/anomaly)")


def _finished(args, recorder, stop, deadline):
    return (stop.stopped or (deadline is not None and time.monotonic() >= deadline)
            or (args.max_messages is not None and recorder.total >= args.max_messages))


def _drain(executor, recorder, idle_spins=3, most=10_000):
    """Writes what has arrived already, so that stopping loses no delivered message."""
    idle = 0
    for _ in range(most):  # bounded: a fast publisher must not keep the recorder from stopping
        before = recorder.total
        executor.spin_once(timeout_sec=0)
        idle = idle + 1 if recorder.total == before else 0
        if idle == idle_spins:
            return


def run(args):
    _check(args)
    started = time.monotonic()
    deadline = None if args.duration is None else started + args.duration
    with StopSignals() as stop, dds_node("daain_bag_recorder") as node, \
            RecordingBag(args.out, args.storage) as bag, \
            tqdm(desc=f"record {args.out.name}", unit="msg") as bar:
        recorder = Recorder(node, bag, args.topics, args.qos, bar)
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        print(f"daain bag record: recording {', '.join(args.topics)} to {args.out}", file=sys.stderr,
              flush=True)
        while not _finished(args, recorder, stop, deadline):
            executor.spin_once(timeout_sec=POLL_S)
        if args.max_messages is None or recorder.total < args.max_messages:
            _drain(executor, recorder)
        executor.shutdown()
    missing = sorted(t for t in args.topics if t not in recorder.qos)
    print(json.dumps({"bag": str(args.out), "messages": recorder.counts, "qos": recorder.qos,
                      "never_published": missing, "wall_s": round(time.monotonic() - started, 3),
                      "stopped_by_signal": stop.signal is not None}))
