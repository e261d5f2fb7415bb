# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""rosbag2 writing and streaming with rosbags: both storages, every message kind, broken bags."""

import numpy as np
import pytest
import yaml

from daain_ros.errors import DataSourceError, ImageError
from daain_ros.io.rosbag import (IMAGE, BagWriter, _header, bag_topics, image_topic, read_images, read_messages,
                                 typestore)

T0 = 1_700_000_000 * 10**9
SUFFIXES = {"mcap": ".mcap", "sqlite3": ".db3"}


def _frames(count=5, shape=(12, 20, 3)):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


@pytest.fixture(params=["mcap", "sqlite3"])
def storage(request):
    return request.param


def test_every_message_kind_round_trips(tmp_path, storage):
    frames = _frames()
    labels = np.arange(240, dtype=np.uint8).reshape(12, 20) % 20
    with BagWriter(tmp_path / "bag", storage) as bag:
        for i, frame in enumerate(frames):
            stamp = T0 + i * 40_000_000
            bag.add_image("/cam", stamp, frame, encoding="rgb8" if i % 2 else "bgr8", frame_id="front")
            bag.add_compressed("/cam/compressed", stamp, frame, fmt="png")
            bag.add_image_labels("/labels", stamp, labels)
            bag.add_bool("/flag", stamp, i == 3)
            bag.add_float32("/score", stamp, i / 4)
    files = sorted(p.name for p in (tmp_path / "bag").iterdir())
    assert files == sorted(["metadata.yaml", "bag" + SUFFIXES[storage]])
    assert bag_topics(tmp_path / "bag") == {
        "/cam": (IMAGE, 5), "/cam/compressed": ("sensor_msgs/msg/CompressedImage", 5), "/labels": (IMAGE, 5),
        "/flag": ("std_msgs/msg/Bool", 5), "/score": ("std_msgs/msg/Float32", 5)}
    for topic in ("/cam", "/cam/compressed"):
        records = list(read_images(tmp_path / "bag", topic))
        assert [r.index for r in records] == list(range(5))
        stamps = [T0 + i * 40_000_000 for i in range(5)]
        assert [r.header_ns for r in records] == [r.log_ns for r in records] == stamps
        for record, frame in zip(records, frames):
            assert record.error is None
            np.testing.assert_array_equal(record.image, frame)
    np.testing.assert_array_equal(next(read_images(tmp_path / "bag", "/labels")).image[..., 2], labels)
    flags = [msg.data for _, _, msg in read_messages(tmp_path / "bag", "/flag")]
    scores = [msg.data for _, _, msg in read_messages(tmp_path / "bag", "/score")]
    assert flags == [False, False, False, True, False] and scores == [0, 0.25, 0.5, 0.75, 1]
    header = next(read_messages(tmp_path / "bag", "/cam"))[2].header
    assert header.frame_id == "front" and (header.stamp.sec, header.stamp.nanosec) == (1_700_000_000, 0)


def test_metadata_is_standard_rosbag2(tmp_path, storage):
    with BagWriter(tmp_path / "bag", storage) as bag:
        for i in range(3):
            bag.add_image("/cam", T0 + i * 100_000_000, _frames(1)[0])
    info = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == storage and info["version"] == 9
    assert info["message_count"] == 3 and info["duration"]["nanoseconds"] == 200_000_000
    assert info["starting_time"]["nanoseconds_since_epoch"] == T0
    assert info["relative_file_paths"] == ["bag" + SUFFIXES[storage]]


def test_a_bag_file_is_readable_without_its_directory(tmp_path):
    with BagWriter(tmp_path / "bag", "mcap") as bag:
        bag.add_image("/cam", T0, _frames(1)[0])
    assert [r.index for r in read_images(tmp_path / "bag" / "bag.mcap", "/cam")] == [0]


def test_frame_range_reads_only_those_messages(tmp_path, storage):
    frames = _frames(6)
    with BagWriter(tmp_path / "bag", storage) as bag:
        for i, frame in enumerate(frames):
            bag.add_image("/cam", T0 + i, frame)
    records = list(read_images(tmp_path / "bag", "/cam", slice(2, 4)))
    assert [r.index for r in records] == [2, 3]
    np.testing.assert_array_equal(records[1].image, frames[3])
    assert [r.index for r in read_images(tmp_path / "bag", "/cam", slice(4, None))] == [4, 5]


def test_undecodable_frames_are_reported_with_their_index(tmp_path, storage):
    types = typestore().types
    with BagWriter(tmp_path / "bag", storage) as bag:
        bag.add_image("/cam", T0, _frames(1)[0])
        truncated = types[IMAGE](header=_header(T0 + 1, "cam"), height=12, width=20, encoding="rgb8",
                                 is_bigendian=0, step=60, data=np.zeros(100, np.uint8))
        bag._write("/cam", T0 + 1, truncated)
        bag.add_image("/cam", T0 + 2, _frames(1)[0])
        bag._write("/jpeg", T0, types["sensor_msgs/msg/CompressedImage"](
            header=_header(T0, "cam"), format="jpeg", data=np.frombuffer(b"garbage", np.uint8)))
    records = list(read_images(tmp_path / "bag", "/cam"))
    assert [r.error is None for r in records] == [True, False, True]
    assert records[1].image is None and records[1].header_ns == T0 + 1
    expected = "/cam frame 1: image data has 100 bytes; expected step 60 x height 12 = 720"
    assert expected in str(records[1].error)
    (bad,) = read_images(tmp_path / "bag", "/jpeg")
    assert isinstance(bad.error, ImageError) and "/jpeg frame 0" in str(bad.error)


def test_invalid_cdr_is_an_error_record(tmp_path):
    # a bag whose /cam claims Image but holds the 5 bytes of a Bool
    with BagWriter(tmp_path / "forged", "mcap") as bag:
        connection = bag._writer.add_connection("/cam", IMAGE, typestore=typestore())
        bool_msg = typestore().types["std_msgs/msg/Bool"](data=True)
        bag._writer.write(connection, T0, typestore().serialize_cdr(bool_msg, "std_msgs/msg/Bool"))
    (record,) = read_images(tmp_path / "forged", "/cam")
    assert record.image is None and record.header_ns == -1
    assert "/cam message 0 is not valid sensor_msgs/msg/Image CDR" in str(record.error)


def test_missing_topic_lists_the_topics_present(tmp_path):
    with BagWriter(tmp_path / "bag", "mcap") as bag:
        bag.add_image("/cam", T0, _frames(1)[0])
        bag.add_float32("/score", T0, 1.0)
    with pytest.raises(DataSourceError, match=r"no topic /nope; the bag has /cam \(sensor_msgs/msg/Image, "
                                              r"1 messages\), /score \(std_msgs/msg/Float32, 1 messages\)"):
        list(read_images(tmp_path / "bag", "/nope"))
    with pytest.raises(DataSourceError, match="/score carries std_msgs/msg/Float32; expected sensor_msgs"):
        list(read_images(tmp_path / "bag", "/score"))


def test_image_topic_is_the_raw_one_else_the_compressed_one_else_asked_for(tmp_path):
    frame = _frames(1)[0]
    with BagWriter(tmp_path / "both", "mcap") as bag:
        bag.add_image("/cam", T0, frame)
        bag.add_compressed("/cam/compressed", T0, frame)
        bag.add_compressed("/cam/compressed", T0 + 1, frame)
    assert image_topic(tmp_path / "both") == ("/cam", 1)
    assert image_topic(tmp_path / "both", "/cam/compressed") == ("/cam/compressed", 2)
    with BagWriter(tmp_path / "two", "mcap") as bag:
        bag.add_compressed("/left", T0, frame)
        bag.add_compressed("/right", T0, frame)
        bag.add_float32("/score", T0, 1.0)
        bag._writer.add_connection("/empty", "sensor_msgs/msg/CompressedImage", typestore=typestore())
    with pytest.raises(DataSourceError, match="topic /empty has no messages"):
        image_topic(tmp_path / "two", "/empty")
    with pytest.raises(DataSourceError, match=r"say which image topic to read \(--topic\); image topics: "
                                              r"/empty .*, /left \(sensor_msgs/msg/CompressedImage, 1 messages\), "
                                              r"/right \(.*\)$"):
        image_topic(tmp_path / "two")


@pytest.fixture
def good_bag(tmp_path, storage):
    with BagWriter(tmp_path / "good", storage) as bag:
        for i, frame in enumerate(_frames(20)):
            bag.add_image("/cam", T0 + i, frame)
    return tmp_path / "good", tmp_path / "good" / ("good" + SUFFIXES[storage])


@pytest.mark.parametrize("damage", [
    lambda data: data[: len(data) // 2],
    lambda data: data[:-1000],  # sqlite3 opens this one and fails part-way through the messages
    lambda data: bytes(len(data)),
], ids=["half", "tail", "zeros"])
def test_damaged_storage_file_is_one_line_never_fewer_frames(good_bag, damage):
    directory, storage_file = good_bag
    storage_file.write_bytes(damage(storage_file.read_bytes()))
    with pytest.raises(DataSourceError, match="cannot be opened as a rosbag2 bag|cannot be read past message"
                       ) as error:
        list(read_images(directory, "/cam"))
    assert "\n" not in str(error.value) and str(directory) in str(error.value)


def test_broken_metadata_and_missing_files(good_bag):
    directory, storage_file = good_bag
    storage_file.unlink()
    with pytest.raises(DataSourceError, match="database files are missing"):
        bag_topics(directory)
    (directory / "metadata.yaml").write_text("{{{ not yaml")
    with pytest.raises(DataSourceError, match="cannot be opened as a rosbag2 bag: Could not load YAML") as e:
        bag_topics(directory)
    assert "\n" not in str(e.value)


def test_not_a_bag(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSourceError, match="no such bag"):
        bag_topics(tmp_path / "missing")
    with pytest.raises(DataSourceError, match=r"Unrecognized storage format '\.txt'"):
        bag_topics(tmp_path / "notes.txt")
    with pytest.raises(DataSourceError, match="metadata file"):
        bag_topics(tmp_path / "empty")


def test_writer_refuses_existing_paths_and_unknown_storage(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(DataSourceError, match="exists already"):
        BagWriter(tmp_path / "taken")
    with pytest.raises(DataSourceError, match="storage 'rosbag1' is not supported; expected mcap or sqlite3"):
        BagWriter(tmp_path / "new", "rosbag1")


def test_writer_removes_a_half_written_bag(tmp_path):
    with pytest.raises(ImageError):
        with BagWriter(tmp_path / "bag") as bag:
            bag.add_image("/cam", T0, _frames(1)[0])
            bag.add_image("/cam", T0 + 1, np.zeros((4, 4), np.uint8))
    assert not (tmp_path / "bag").exists()


def test_one_topic_one_type(tmp_path):
    with pytest.raises(DataSourceError, match="/x carries std_msgs/msg/Bool; cannot also write std_msgs"):
        with BagWriter(tmp_path / "bag") as bag:
            bag.add_bool("/x", T0, True)
            bag.add_float32("/x", T0, 1.0)
    with pytest.raises(ImageError, match="use add_image_labels for mono8"):
        with BagWriter(tmp_path / "bag2") as bag:
            bag.add_image("/x", T0, np.zeros((4, 4, 3), np.uint8), encoding="mono8")


def test_rclpy_reads_the_bytes_we_write(tmp_path):
    """What ``ros2 bag play`` publishes is our CDR as is: rclpy must deserialize it to the same fields."""
    serialization = pytest.importorskip("rclpy.serialization", reason="needs rclpy (ROS 2 Python wheels)")
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Bool, Float32

    from daain_ros.io.image_codec import decode_compressed_msg, decode_image_msg
    frame = _frames(1)[0]
    with BagWriter(tmp_path / "bag", "mcap") as bag:
        bag.add_image("/cam", T0 + 5, frame, frame_id="front")
        bag.add_compressed("/jpeg", T0, frame, fmt="png")
        bag.add_bool("/flag", T0, True)
        bag.add_float32("/score", T0, 0.25)
    from rosbags.rosbag2 import Reader
    with Reader(tmp_path / "bag") as reader:
        raw = {c.topic: bytes(data) for c, _, data in reader.messages()}
    image = serialization.deserialize_message(raw["/cam"], Image)
    header = image.header
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (1_700_000_000, 5, "front")
    np.testing.assert_array_equal(decode_image_msg(image), frame)
    compressed = serialization.deserialize_message(raw["/jpeg"], CompressedImage)
    np.testing.assert_array_equal(decode_compressed_msg(compressed), frame)
    assert serialization.deserialize_message(raw["/flag"], Bool).data is True
    assert serialization.deserialize_message(raw["/score"], Float32).data == 0.25
