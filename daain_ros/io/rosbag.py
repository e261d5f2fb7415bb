# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Writing and streaming rosbag2 bags (mcap or sqlite3) with ``rosbags``, without a ROS install.

Bags are rosbag2 version 9 with the standard ``metadata.yaml``, so ``ros2 bag info/play`` (Jazzy and
later) and Foxglove open them. Every problem with a bag (missing, truncated, corrupt, unknown format, no
such topic) is one :class:`DataSourceError` line; a frame that cannot be decoded is reported with its
index, never skipped silently.
"""

import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from daain_ros.errors import DaainError, DataSourceError, ImageError, one_line
from daain_ros.io.image_codec import decode_compressed_msg, decode_image_msg, encode_compressed, encode_image

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
_DECODERS = {IMAGE: decode_image_msg, COMPRESSED_IMAGE: decode_compressed_msg}
_BAG_VERSION = 9


@lru_cache(maxsize=1)
def typestore():
    """The ROS 2 Kilted message types (Image, CompressedImage, Bool, Float32, ...)."""
    return get_typestore(Stores.ROS2_KILTED)


def _header(stamp_ns, frame_id):
    types = typestore().types
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                        frame_id=frame_id)


def header_stamp_ns(header):
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class BagWriter:
    """Writes a new rosbag2 directory; a context manager that removes a half-written bag on error.

    Log time and header stamp of each message are both ``stamp_ns``.
    """

    def __init__(self, path, storage="mcap"):
        if storage not in STORAGES:
            raise DataSourceError(f"bag storage {storage!r} is not supported; expected mcap or sqlite3")
        self.path = Path(path)
        if self.path.exists():
            raise DataSourceError(f"{self.path} exists already; a bag is only written to a new path")
        self.storage = storage
        self._writer = Writer(self.path, version=_BAG_VERSION, storage_plugin=STORAGES[storage])
        self._connections = {}

    def __enter__(self):
        self._writer.open()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._writer.close()
        else:
            self._writer.abort()
            shutil.rmtree(self.path, ignore_errors=True)
        return False

    def _write(self, topic, stamp_ns, msg):
        msgtype = msg.__msgtype__
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise DataSourceError(f"topic {topic} carries {connection.msgtype}; cannot also write {msgtype}")
        self._writer.write(connection, int(stamp_ns), typestore().serialize_cdr(msg, msgtype))

    def add_image(self, topic, stamp_ns, image_bgr, encoding="rgb8", frame_id="camera"):
        """A sensor_msgs/Image of a BGR frame, sent as ``encoding`` (rgb8 or bgr8)."""
        if encoding == "mono8":
            raise ImageError("add_image takes colour frames (rgb8 or bgr8); use add_image_labels for mono8")
        self._add_raw(topic, stamp_ns, encode_image(image_bgr, encoding), frame_id)

    def add_image_labels(self, topic, stamp_ns, labels, frame_id="camera"):
        """A mono8 sensor_msgs/Image of an HxW uint8 map (segmentation train ids, say)."""
        self._add_raw(topic, stamp_ns, encode_image(labels, "mono8"), frame_id)

    def _add_raw(self, topic, stamp_ns, fields, frame_id):
        fields["data"] = np.frombuffer(fields["data"], np.uint8)
        self._write(topic, stamp_ns, typestore().types[IMAGE](header=_header(stamp_ns, frame_id), **fields))

    def add_compressed(self, topic, stamp_ns, image_bgr, fmt="jpeg", frame_id="camera"):
        """A sensor_msgs/CompressedImage (jpeg or png) of a BGR frame."""
        fields = encode_compressed(image_bgr, fmt)
        msg = typestore().types[COMPRESSED_IMAGE](header=_header(stamp_ns, frame_id), format=fields["format"],
                                                  data=np.frombuffer(fields["data"], np.uint8))
        self._write(topic, stamp_ns, msg)

    def add_bool(self, topic, stamp_ns, value):
        self._write(topic, stamp_ns, typestore().types["std_msgs/msg/Bool"](data=bool(value)))

    def add_float32(self, topic, stamp_ns, value):
        self._write(topic, stamp_ns, typestore().types["std_msgs/msg/Float32"](data=float(value)))


def _open_reader(path):
    path = Path(path)
    if not path.exists():
        raise DataSourceError(f"{path}: no such bag (a rosbag2 directory, .mcap or .db3 file)")
    try:
        reader = Reader(path)
        reader.open()
    except DaainError:
        raise
    except Exception as exc:  # rosbags and its storages raise many kinds on a foreign or broken file
        raise DataSourceError(f"{path}: cannot be opened as a rosbag2 bag: {one_line(exc)}") from exc
    return reader


def bag_topics(path):
    """``{topic: (message type, message count)}`` of a bag."""
    reader = _open_reader(path)
    try:
        return {topic: (info.msgtype, info.msgcount) for topic, info in reader.topics.items()}
    finally:
        reader.close()


def describe_topics(topics):
    """``/a (type, N messages), /b (...)``, or ``none``: what a bag holds, for the errors that name it."""
    return ", ".join(f"{t} ({m}, {n} messages)" for t, (m, n) in sorted(topics.items())) or "none"


def check_topics(path, topics, wanted, msgtypes=None):
    """Raises unless the bag's ``topics`` (see :func:`bag_topics`) hold every ``wanted`` topic.

    :param msgtypes: the message types the wanted topics must have, or None for any.
    """
    missing = [topic for topic in wanted if topic not in topics]
    if missing:
        raise DataSourceError(f"{path}: no topic {', '.join(missing)}; the bag has {describe_topics(topics)}")
    for topic in wanted:
        msgtype = topics[topic][0]
        if msgtypes is not None and msgtype not in msgtypes:
            raise DataSourceError(f"{path}: topic {topic} carries {msgtype}; expected {' or '.join(msgtypes)}")


def image_topic(path, topic=None, hint="--topic"):
    """The image topic to read and its message count.

    ``topic``, else the bag's one Image topic, else its one CompressedImage topic.

    :param hint: how the user names a topic, for the error when the bag leaves the choice open.
    """
    topics = bag_topics(path)
    if topic is None:
        topic = _only_image_topic(path, topics, hint)
    check_topics(path, topics, [topic], IMAGE_TYPES)
    if topics[topic][1] == 0:
        raise DataSourceError(f"{path}: topic {topic} has no messages")
    return topic, topics[topic][1]


def _only_image_topic(path, topics, hint):
    for msgtype in IMAGE_TYPES:  # raw frames first: a bag from ``daain bag --compressed`` has both
        candidates = [t for t, (m, _) in topics.items() if m == msgtype]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            break
    images = {t: v for t, v in topics.items() if v[0] in IMAGE_TYPES}
    raise DataSourceError(f"{path}: say which image topic to read ({hint}); image topics: "
                          f"{describe_topics(images)}")


def read_messages(path, topic, msgtypes=None, frames=None):
    """Streams ``(index, log time ns, message)`` of one topic in log-time order.

    A message whose bytes are not valid CDR comes as an :class:`ImageError` (naming topic and index, not
    the bag) in place of the message.

    :param msgtypes: the message types the topic must have, or None for any.
    :param frames: a slice of message indices (non-negative, step 1): others are not even deserialized.
    """
    reader = _open_reader(path)
    try:
        topics = {t: (info.msgtype, info.msgcount) for t, info in reader.topics.items()}
        check_topics(path, topics, [topic], msgtypes)
        connections = [c for c in reader.connections if c.topic == topic]
        yield from _deserialized(path, reader.messages(connections=connections), frames or slice(None))
    finally:
        reader.close()


def _deserialized(path, messages, frames):
    start, stop = frames.start or 0, frames.stop
    index = 0
    while stop is None or index < stop:
        try:
            connection, log_ns, raw = next(messages)
        except StopIteration:
            return
        except Exception as exc:  # a truncated or corrupt storage file fails mid-stream
            raise DataSourceError(f"{path}: cannot be read past message {index}: {one_line(exc)}") from exc
        if index >= start:
            yield index, log_ns, _deserialize(connection, index, raw)
        index += 1


def _deserialize(connection, index, raw):
    try:
        return typestore().deserialize_cdr(raw, connection.msgtype)
    except Exception as exc:  # CDR decoding of foreign bytes raises struct, index and value errors
        return ImageError(f"{connection.topic} message {index} is not valid {connection.msgtype} CDR: "
                          f"{one_line(exc)}")


@dataclass(frozen=True)
class BagImage:
    """One message of an image topic: the BGR frame, or the error that kept it from being decoded.

    ``msg`` is the message as stored (None when not even its CDR could be read), so that a replay can
    write it out again unchanged.
    """

    index: int
    log_ns: int
    header_ns: int
    image: np.ndarray = None
    error: ImageError = None
    msg: object = None

    @property
    def stamp_ns(self):
        """The header stamp, or the log time when the header is unset or unreadable."""
        return self.header_ns if self.header_ns > 0 else self.log_ns


def read_images(path, topic, frames=None):
    """Streams :class:`BagImage` for each sensor_msgs Image or CompressedImage message of ``topic``.

    An undecodable frame comes with ``image=None`` and an ``error`` naming the topic and index (the caller
    knows the bag), so callers count it instead of losing it; ``header_ns`` is -1 when not even the header
    could be read.

    :param frames: a slice of message indices to read (see :func:`read_messages`).
    """
    for index, log_ns, msg in read_messages(path, topic, IMAGE_TYPES, frames):
        if isinstance(msg, ImageError):
            yield BagImage(index, log_ns, -1, error=msg)
            continue
        header_ns = header_stamp_ns(msg.header)
        try:
            image = _DECODERS[msg.__msgtype__](msg)
        except ImageError as exc:
            yield BagImage(index, log_ns, header_ns, error=ImageError(f"{topic} frame {index}: {one_line(exc)}"),
                           msg=msg)
            continue
        yield BagImage(index, log_ns, header_ns, image=image, msg=msg)
