# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Frame sources: every kind, frame ranges, stamps and the errors that name the source."""

import cv2
import numpy as np
import pytest

from daain_ros.errors import DataSourceError, ImageError
from daain_ros.io.images import write_image
from daain_ros.io.rosbag import BagWriter
from daain_ros.io.sources import STILL_RATE, open_source, parse_frames

T0 = 1_700_000_000 * 10**9
VIDEO = "solidWhiteRight.mp4"


@pytest.fixture(scope="module")
def small_frames(footage_dir):
    """Eight frames of the drive, shrunk to 48x27."""
    capture = cv2.VideoCapture(str(footage_dir / VIDEO))
    frames = [cv2.resize(capture.read()[1], (48, 27), interpolation=cv2.INTER_AREA) for _ in range(8)]
    capture.release()
    return frames


@pytest.mark.parametrize("text,expected", [
    ("0:150", slice(0, 150)), ("150:221", slice(150, 221)), ("150:", slice(150, None)),
    (":150", slice(None, 150)), (":", slice(None, None)), (" 3 : 7 ", slice(3, 7)),
])
def test_parse_frames(text, expected):
    assert parse_frames(text) == expected
    assert parse_frames(None) is None


@pytest.mark.parametrize("text,message", [
    ("150", "is not A:B"), ("a:b", "is not A:B"), ("1:2:3", "is not A:B"),
    ("-10:", "non-negative"), ("5:5", "selects no frames"), ("7:3", "selects no frames"),
])
def test_parse_frames_rejects(text, message):
    with pytest.raises(DataSourceError, match=message):
        parse_frames(text)


def test_video_frames_ranges_and_stamps(footage_dir, drive_frames):
    path = str(footage_dir / VIDEO)
    held_out = open_source(path, parse_frames("150:"))
    assert held_out.total == 71 and held_out.rate == 25
    frames = list(held_out)
    assert [f.index for f in frames] == list(range(150, 221))
    assert frames[0].stamp_ns == 6_000_000_000 and frames[1].stamp_ns == 6_040_000_000
    assert frames[0].source == path
    np.testing.assert_array_equal(frames[0].image, drive_frames[150])
    np.testing.assert_array_equal(frames[-1].image, drive_frames[220])
    fit = list(open_source(path, parse_frames(":3")))
    assert [f.index for f in fit] == [0, 1, 2]
    np.testing.assert_array_equal(fit[2].image, drive_frames[2])


def test_video_range_past_the_end(footage_dir):
    with pytest.raises(DataSourceError, match="frames 300: select no frames"):
        open_source(str(footage_dir / VIDEO), parse_frames("300:"))


def test_folder_in_natural_order(tmp_path, small_frames):
    for i in (10, 2, 1):
        write_image(tmp_path / f"frame{i}.png", small_frames[i % 8])
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path))
    frames = list(source)
    assert [f.source.rsplit("/", 1)[1] for f in frames] == ["frame1.png", "frame2.png", "frame10.png"]
    assert [f.stamp_ns for f in frames] == [0, round(1e9 / STILL_RATE), round(2e9 / STILL_RATE)]
    np.testing.assert_array_equal(frames[2].image, small_frames[2])
    assert [f.index for f in open_source(str(tmp_path), parse_frames("1:"))] == [1, 2]
    assert list(source)[0].index == 0  # re-iterable


def test_single_image(footage_dir):
    (frame,) = open_source(str(footage_dir / "udacity_p1" / "solidWhiteCurve.jpg"))
    assert frame.index == 0 and frame.image.shape == (540, 960, 3)


def test_undecodable_image_names_file_and_index(tmp_path, small_frames):
    write_image(tmp_path / "a.png", small_frames[0])
    (tmp_path / "b.png").write_bytes(b"not a png")
    frames = iter(open_source(str(tmp_path)))
    assert next(frames).index == 0
    with pytest.raises(ImageError, match=r"frame 1: .*b\.png: cannot be decoded"):
        next(frames)


def _cityscapes_tree(root, frames):
    for split, cities in {"val": {"frankfurt": 2, "lindau": 1}, "train": {"aachen": 3}}.items():
        for city, count in cities.items():
            for i in range(count):
                write_image(root / "leftImg8bit" / split / city / f"{city}_{i:06d}_000019_leftImg8bit.png",
                            frames[i])
                write_image(root / "gtFine" / split / city / f"{city}_{i:06d}_000019_gtFine_labelIds.png",
                            frames[i][..., 0])


def test_cityscapes_layout(tmp_path, small_frames):
    _cityscapes_tree(tmp_path, small_frames)
    val = list(open_source(f"cityscapes:{tmp_path}"))
    assert [f.source.split("/")[-2:] for f in val] == [
        ["frankfurt", "frankfurt_000000_000019_leftImg8bit.png"],
        ["frankfurt", "frankfurt_000001_000019_leftImg8bit.png"],
        ["lindau", "lindau_000000_000019_leftImg8bit.png"]]
    np.testing.assert_array_equal(val[2].image, small_frames[0])
    train = open_source(f"cityscapes:{tmp_path}:train", parse_frames("1:"))
    assert train.total == 2 and [f.index for f in train] == [1, 2]
    with pytest.raises(DataSourceError, match="no Cityscapes split 'test'.*splits present: train, val"):
        open_source(f"cityscapes:{tmp_path}:test")
    with pytest.raises(DataSourceError, match="splits present: none"):
        open_source(f"cityscapes:{tmp_path / 'nowhere'}")


def _bag(path, frames, storage="mcap", compressed=False, extra_image_topic=False):
    with BagWriter(path, storage) as bag:
        for i, frame in enumerate(frames):
            bag.add_image("/cam", T0 + i * 50_000_000, frame)
            if compressed:
                bag.add_compressed("/cam/compressed", T0 + i * 50_000_000, frame, fmt="png")
            if extra_image_topic:
                bag.add_image_labels("/labels", T0 + i * 50_000_000, frame[..., 0])
            bag.add_float32("/score", T0 + i, 0.5)
    return path


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_topic_frames_and_header_stamps(tmp_path, small_frames, storage):
    path = _bag(tmp_path / "drive", small_frames, storage, compressed=True)
    for spec in (f"{path}:/cam", f"{path}:/cam/compressed", str(path)):
        source = open_source(spec, parse_frames("5:7"))
        frames = list(source)
        assert source.total == 2 and source.rate is None
        assert [f.index for f in frames] == [5, 6]
        assert [f.stamp_ns for f in frames] == [T0 + 250_000_000, T0 + 300_000_000]
        np.testing.assert_array_equal(frames[1].image, small_frames[6])
    assert frames[0].source == f"{path}:/cam"  # the raw Image topic is the default


def test_bag_topic_argument_and_storage_file(tmp_path, small_frames):
    path = _bag(tmp_path / "drive", small_frames[:2], compressed=True)
    assert len(list(open_source(str(path / "drive.mcap"), topic="/cam/compressed"))) == 2


def test_bag_errors_list_topics(tmp_path, small_frames):
    path = _bag(tmp_path / "drive", small_frames[:2], extra_image_topic=True)
    with pytest.raises(DataSourceError, match=r"say which image topic to read \(BAG:/TOPIC\); image topics: "
                                              r"/cam \(sensor_msgs/msg/Image, 2 messages\), /labels \("):
        open_source(str(path))
    with pytest.raises(DataSourceError, match=r"no topic /front; the bag has /cam .*/score "
                                              r"\(std_msgs/msg/Float32, 2 messages\)"):
        open_source(f"{path}:/front")
    with pytest.raises(DataSourceError, match="topic /score carries std_msgs/msg/Float32; expected sensor_msgs"):
        open_source(str(path), topic="/score")
    with pytest.raises(DataSourceError, match="frames 9: select no frames"):
        open_source(f"{path}:/cam", parse_frames("9:"))


def test_bag_undecodable_frame_names_source_and_index(tmp_path, small_frames):
    from daain_ros.io.rosbag import _header, typestore
    with BagWriter(tmp_path / "bag") as bag:
        bag.add_image("/cam", T0, small_frames[0])
        broken = typestore().types["sensor_msgs/msg/Image"](
            header=_header(T0 + 1, "cam"), height=27, width=48, encoding="yuv422", is_bigendian=0, step=96,
            data=np.zeros(96 * 27, np.uint8))
        bag._write("/cam", T0 + 1, broken)
    frames = iter(open_source(str(tmp_path / "bag")))
    next(frames)
    with pytest.raises(ImageError, match=r"bag: /cam frame 1: image encoding 'yuv422' is not supported"):
        next(frames)


@pytest.mark.parametrize("name,content,message", [
    ("missing.mp4", None, "no such file or folder"),
    ("notes.md", b"# hi", r"unknown kind of source '\.md'"),
    ("noext", b"x", r"unknown kind of source '\(no suffix\)'"),
    ("broken.mp4", b"not a video", "cannot be opened as a video"),
    ("broken.mcap", b"not a bag", "cannot be opened as a rosbag2 bag"),
    ("empty", "dir", "a folder with no image files"),
])
def test_unusable_sources(tmp_path, name, content, message):
    if content == "dir":
        (tmp_path / name).mkdir()
    elif content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(DataSourceError, match=message):
        open_source(str(tmp_path / name))


def test_ranges_must_be_forward(tmp_path):
    with pytest.raises(DataSourceError, match="non-negative bounds and step 1"):
        open_source(str(tmp_path), slice(0, 10, 2))
