# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Publish a bag's messages with rclpy on their recorded timing, like ``ros2 bag play`` (``daain bag play``).

Messages go out in log-time order, message ``i`` at ``(log_ns[i] - log_ns[0]) / rate`` after the start
(late ones at once, none skipped). Each is validated by deserializing it (``rosbags``) and published as
CDR bytes, so any message type with a Python package here can be played. A message that cannot be
deserialized is not published: it is counted and named on stderr. Publishers are reliable by default
(``qos="best_effort"`` for sensor-data QoS); at the end the player waits for reliable subscribers to
acknowledge everything (not after SIGINT/SIGTERM, which stop it at once).
"""

import heapq
import sys
import time
from pathlib import Path

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
from tqdm import tqdm

from daain_ros.errors import DaainError, DataSourceError, ImageError
from daain_ros.io.rosbag import bag_topics, check_topics, read_messages, typestore
from daain_ros.ros.dds import StopSignals, dds_node, message_class, other_publishers
from daain_ros.ros.qos import RELIABILITY

DEPTH = 10
ACK_TIMEOUT_S = 10.0


def parse_remaps(texts):
    """``["A:=B", ...]`` -> ``{A: B}``."""
    remaps = {}
    for text in texts:
        source, sep, target = text.partition(":=")
        if not sep or not source.startswith("/") or not target.startswith("/"):
            raise DaainError(f"topic remap {text!r}: expected /FROM:=/TO, e.g. /camera/image_raw:=/image")
        remaps[source] = target
    return remaps


def played_topics(bag, wanted):
    """``{topic: message type}`` of the topics to play (all by default), checked against the bag."""
    topics = bag_topics(bag)
    check_topics(bag, topics, wanted or ())
    chosen = {t: topics[t][0] for t in (wanted or sorted(topics)) if topics[t][1] > 0}
    if not chosen:
        raise DataSourceError(f"{bag}: no messages to play")
    return chosen, sum(topics[t][1] for t in chosen)


def messages(bag, topics):
    """``(log ns, topic, index, message or ImageError)`` of all ``topics``, merged in log-time order."""
    def stream(topic):
        for index, log_ns, msg in read_messages(bag, topic):
            yield log_ns, topic, index, msg

    return heapq.merge(*map(stream, topics), key=lambda item: item[0])


class Player:
    """Publishes one pass over the bag at ``rate`` times the recorded speed."""

    def __init__(self, bag, publishers, msgtypes, rate, stop):
        self.bag, self.publishers, self.msgtypes, self.rate, self.stop = bag, publishers, msgtypes, rate, stop
        self.published = dict.fromkeys(publishers, 0)
        self.unreadable = 0

    def play(self, progress):
        start = first_ns = None
        for log_ns, topic, index, msg in messages(self.bag, self.publishers):
            if first_ns is None:  # the clock starts with the first message, once the bag is open
                start, first_ns = time.monotonic(), log_ns
            self.stop.sleep_until(start + (log_ns - first_ns) / 1e9 / self.rate)
            if self.stop.stopped:
                return
            if isinstance(msg, ImageError):
                self.unreadable += 1
                tqdm.write(f"daain bag play: not published: {self.bag}: {msg}", file=sys.stderr)
            else:
                self.publishers[topic].publish(bytes(typestore().serialize_cdr(msg, self.msgtypes[topic])))
                self.published[topic] += 1
            progress.update()


def _wait_for_subscribers(publishers, count, stop):
    def short():
        return sorted(p.topic_name for p in publishers.values() if p.get_subscription_count() < count)

    if short():
        print(f"daain bag play: waiting for {count} subscriber(s) on {', '.join(short())}", file=sys.stderr,
              flush=True)
    while not stop.stopped and short():
        stop.sleep_until(time.monotonic() + 0.02)


def _warn_of_other_publishers(node, publishers, seen):
    """Adds to ``seen`` ({topic: names}) the other nodes publishing on the played topics; warns of new ones.

    A detector_node reading such a topic raises its flag while frames from several sources interleave (a bag
    replayed onto a live camera's topic), so the replay would say nothing of the bag.
    """
    for publisher in publishers.values():
        topic = publisher.topic_name
        new = sorted(set(other_publishers(node, topic)) - set(seen.get(topic, ())))
        if new:
            seen[topic] = sorted({*seen.get(topic, ()), *new})
            tqdm.write(f"daain bag play: warning: {topic} has other publishers ({', '.join(new)}): a detector_node "
                       "reading it raises its flag while their frames and the bag's interleave", file=sys.stderr)


def play_bag(bag, *, rate=1.0, loop=False, topics=None, remaps=None, qos="reliable", wait_for_subscribers=0,
             delay=0.0):
    """Publishes a bag's messages on their recorded timing until done or signalled; returns what it did.

    :param rate: playback speed factor.
    :param loop: play the bag again and again until SIGINT/SIGTERM.
    :param topics: the topics to play, or None for all.
    :param remaps: ``{recorded topic: topic to publish it on}`` (see :func:`parse_remaps`).
    :param qos: reliability of the publishers, ``reliable`` or ``best_effort``.
    :param wait_for_subscribers: start only once every played topic has this many subscribers.
    :param delay: seconds to wait before the first message.
    :returns: ``{"bag", "published", "unreadable", "passes", "wall_s", "acknowledged", "stopped_by_signal",
        "other_publishers"}``; the last: per played topic, the other nodes seen publishing on it as play started or
        ended (each warned of on stderr).
    """
    if not rate > 0 or delay < 0 or wait_for_subscribers < 0:
        raise DaainError(f"--rate {rate}, --delay {delay}, --wait-for-subscribers "
                         f"{wait_for_subscribers}: expected a rate > 0 and the others >= 0")
    bag, remaps = Path(bag), remaps or {}
    msgtypes, count = played_topics(bag, topics)
    classes = {topic: message_class(msgtype) for topic, msgtype in msgtypes.items()}
    profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=DEPTH, reliability=RELIABILITY[qos],
                         durability=DurabilityPolicy.VOLATILE)
    passes, started = 0, time.monotonic()
    with StopSignals() as stop, dds_node("daain_bag_player") as node:
        publishers = {t: node.create_publisher(classes[t], remaps.get(t, t), profile) for t in msgtypes}
        _wait_for_subscribers(publishers, wait_for_subscribers, stop)
        stop.sleep_until(time.monotonic() + delay)
        others = {}
        _warn_of_other_publishers(node, publishers, others)
        player = Player(bag, publishers, msgtypes, rate, stop)
        with tqdm(total=None if loop else count, desc=f"play {bag.name}", unit="msg") as progress:
            while not stop.stopped and (passes == 0 or loop):
                player.play(progress)
                passes += 1
        acked = None if stop.stopped else all(p.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
                                              for p in publishers.values())
        _warn_of_other_publishers(node, publishers, others)
    return {"bag": str(bag), "published": player.published, "unreadable": player.unreadable, "passes": passes,
            "wall_s": round(time.monotonic() - started, 3), "acknowledged": acked,
            "stopped_by_signal": stop.signal is not None, "other_publishers": others}
