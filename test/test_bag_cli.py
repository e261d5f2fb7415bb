# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bag from-video`` / ``from-images``: bags, stamps, injected segments, labels.json and errors."""

import numpy as np
import pytest

from daain_ros.cli.main import main
from daain_ros.errors import DataSourceError
from daain_ros.evaluation.bag_make import EPOCH_NS
from daain_ros.io.images import write_image
from daain_ros.io.labels import BagLabels, Segment, check_segments, parse_segment, read_labels, write_labels
from daain_ros.io.rosbag import bag_topics, read_images
from daain_ros.io.sources import STILL_RATE, open_source, stamp_at

VIDEO = "solidWhiteRight.mp4"


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "images"
    for i in range(12):
        write_image(folder / f"img{i}.png", rng.integers(0, 256, (18, 32, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_from_video_range_compressed(tmp_path, footage_dir, drive_frames, storage, capsys):
    out = tmp_path / "drive"
    assert main(["bag", "from-video", str(footage_dir / VIDEO), str(out), "--frames", "150:154",
                 "--compressed", "--storage", storage]) == 0
    assert '"frames": 4' in capsys.readouterr().out
    assert bag_topics(out) == {"/camera/image_raw": ("sensor_msgs/msg/Image", 4),
                               "/camera/image_raw/compressed": ("sensor_msgs/msg/CompressedImage", 4)}
    raw = list(read_images(out, "/camera/image_raw"))
    assert [r.header_ns for r in raw] == [EPOCH_NS + i * 40_000_000 for i in range(150, 154)]
    for record, index in zip(raw, range(150, 154)):
        np.testing.assert_array_equal(record.image, drive_frames[index])
    jpeg = next(read_images(out, "/camera/image_raw/compressed")).image
    assert np.abs(jpeg.astype(int) - drive_frames[150]).mean() < 3
    labels = read_labels(out)
    assert (labels.topic, labels.compressed_topic, labels.rate_hz) == (
        "/camera/image_raw", "/camera/image_raw/compressed", 25.0)
    assert (labels.first_frame, labels.frame_count, labels.segments) == (150, 4, ())


def test_from_images_with_injected_segments(tmp_path, image_dir):
    """The real corruptions at the asked severity, image ``i`` seeded ``--seed + i``, the rest untouched."""
    from daain_ros.evaluation.corruptions import corrupt
    out = tmp_path / "bag"
    assert main(["bag", "from-images", str(image_dir), str(out), "--topic", "/front/image", "--rate", "20",
                 "--inject", "fog:7-10", "--inject", "noise:2-4", "--severity", "2", "--seed", "5",
                 "--encoding", "bgr8", "--storage", "sqlite3"]) == 0
    originals = [frame.image for frame in open_source(str(image_dir))]
    records = list(read_images(out, "/front/image"))
    assert len(records) == 12
    labels = read_labels(out)
    for index, record in enumerate(records):
        assert record.header_ns == EPOCH_NS + index * 50_000_000
        kind = labels.kind_at(record.header_ns)
        assert kind == ("noise" if 2 <= index < 4 else "fog" if 7 <= index < 10 else None)
        expected = originals[index] if kind is None else corrupt(kind, originals[index], 2, 5 + index)
        np.testing.assert_array_equal(record.image, expected)
    noise = labels.segments[0]
    assert (noise.kind, noise.start, noise.end) == ("noise", 2, 4)
    assert (noise.start_ns, noise.end_ns) == (EPOCH_NS + 100_000_000, EPOCH_NS + 200_000_000)
    assert labels.perturbation["severity"] == 2 and labels.rate_hz == 20


def test_labels_json_carries_seconds_and_kinds(tmp_path, image_dir):
    import json
    out = tmp_path / "bag"
    assert main(["bag", "from-images", str(image_dir), str(out), "--inject", "vflip:3-5",
                 "--frames", "2:"]) == 0
    body = json.loads((out / "labels.json").read_text())
    assert body["kinds"] == ["vflip"] and body["first_frame"] == 2 and body["frame_count"] == 10
    (segment,) = body["segments"]
    assert segment["start_ns"] == EPOCH_NS + stamp_at(3, STILL_RATE)
    assert segment["start_s"] == pytest.approx(1_700_000_000.3)
    assert segment["end_s"] == pytest.approx(1_700_000_000.5)
    assert sorted(p.name for p in out.iterdir()) == ["bag.mcap", "labels.json", "metadata.yaml"]


def test_same_command_same_bag(tmp_path, image_dir):
    for run in ("a", "b"):
        out = tmp_path / run / "bag"
        assert main(["bag", "from-images", str(image_dir), str(out), "--frames", ":3"]) == 0
    for name in ("bag.mcap", "metadata.yaml", "labels.json"):
        assert (tmp_path / "a" / "bag" / name).read_bytes() == (tmp_path / "b" / "bag" / name).read_bytes()


def test_labels_round_trip(tmp_path):
    labels = BagLabels(topic="/cam", rate_hz=10.0, epoch_ns=EPOCH_NS, first_frame=0, frame_count=30,
                       segments=(Segment("fog", 5, 10, 500, 1000), Segment("pgd", 20, 25, 2000, 2500)),
                       source="x.mp4", perturbation=dict(severity=3))
    write_labels(tmp_path, labels)
    assert read_labels(tmp_path) == labels == read_labels(tmp_path / "labels.json")
    assert [labels.kind_at(t) for t in (499, 500, 999, 1000, 2499)] == [None, "fog", "fog", None, "pgd"]


@pytest.mark.parametrize("content,message", [
    (None, "cannot read anomaly labels"),
    ("{not json", "cannot read anomaly labels"),
    ('{"format": "other", "version": 1}', "not a daain-bag-labels file of version 1"),
    ('{"format": "daain-bag-labels", "version": 1, "segments": [{"kind": "fog"}]}', "malformed"),
])
def test_bad_labels(tmp_path, content, message):
    if content is not None:
        (tmp_path / "labels.json").write_text(content)
    with pytest.raises(DataSourceError, match=message):
        read_labels(tmp_path)


@pytest.mark.parametrize("text", ["fog", "fog:3", "fog:5-3", "fog:3-3", ":1-2", "fog:-1-4", "fog:a-b"])
def test_bad_segments(text):
    with pytest.raises(DataSourceError, match="expected KIND:START-END"):
        parse_segment(text)


def test_segment_checks():
    assert parse_segment("fgsm-road:3-9") == Segment("fgsm-road", 3, 9)
    with pytest.raises(DataSourceError, match="fog:0-5 and noise:4-6 overlap"):
        check_segments([parse_segment("noise:4-6"), parse_segment("fog:0-5")])
    with pytest.raises(DataSourceError, match="fog:8-12 lies outside the frames written \\(2-10\\)"):
        check_segments([parse_segment("fog:8-12")], 2, 10)
    with pytest.raises(DataSourceError, match="lies outside"):
        check_segments([parse_segment("fog:0-2")], 2, None)


@pytest.mark.parametrize("extra,message", [
    (["--inject", "fog:10-13"], "fog:10-13 lies outside the frames written (0-12)"),
    (["--frames", "5:", "--inject", "fog:2-6"], "lies outside the frames written (5-12)"),
    (["--inject", "fog:1-3", "--inject", "noise:2-4"], "overlap"),
    (["--inject", "fog"], "expected KIND:START-END"),
    (["--inject", "pgd:1-3"], "--model is needed to inject the attack kinds pgd"),
    (["--rate", "0"], "--rate 0.0: expected a positive frame rate"),
    (["--frames", "20:"], "frames 20: select no frames"),
])
def test_cli_errors_are_one_line(tmp_path, image_dir, capsys, extra, message):
    assert main(["bag", "from-images", str(image_dir), str(tmp_path / "bag"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("daain bag: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "bag").exists()


def test_cli_refuses_to_overwrite_and_missing_sources(tmp_path, image_dir, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["bag", "from-images", str(image_dir), str(tmp_path / "taken")]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["bag", "from-video", str(tmp_path / "none.mp4"), str(tmp_path / "b")]) == 2
    assert "none.mp4: no such video file" in capsys.readouterr().err
    assert main(["bag", "from-images", str(tmp_path / "nodir"), str(tmp_path / "b")]) == 2
    assert "nodir: no such folder" in capsys.readouterr().err


def test_failed_perturbation_leaves_no_bag(tmp_path, image_dir, capsys):
    """Frame 5, one row high, cannot be fogged; frames 0-4 are already in the bag when it fails."""
    write_image(image_dir / "img5.png", np.zeros((1, 32, 3), np.uint8))
    assert main(["bag", "from-images", str(image_dir), str(tmp_path / "bag"), "--inject", "fog:4-6"]) == 2
    err = capsys.readouterr().err
    assert "image of shape (1, 32, 3) and dtype uint8: expected HxWx3 BGR uint8, at least 2x2" in err, err
    assert not (tmp_path / "bag").exists()


def test_real_corruptions_seeded_by_source_frame(tmp_path, image_dir):
    from daain_ros.evaluation.corruptions import corrupt
    out = tmp_path / "bag"
    assert main(["bag", "from-images", str(image_dir), str(out), "--inject", "noise:3-5", "--inject", "vflip:8-9",
                 "--seed", "100", "--severity", "4"]) == 0
    originals = [frame.image for frame in open_source(str(image_dir))]
    records = list(read_images(out, "/camera/image_raw"))
    for index in (3, 4):
        np.testing.assert_array_equal(records[index].image, corrupt("noise", originals[index], 4, 100 + index))
    np.testing.assert_array_equal(records[8].image, originals[8][::-1])
    for index in (2, 5, 7, 9):
        np.testing.assert_array_equal(records[index].image, originals[index])


@pytest.mark.slow
def test_attack_segment_with_the_real_model(tmp_path, image_dir, espnet_dir):
    out = tmp_path / "bag"
    assert main(["bag", "from-images", str(image_dir), str(out), "--inject", "fgsm:1-3", "--width", "64",
                 "--height", "32", "--model", str(espnet_dir / "espnet_p_2_q_8.pth"), "--device", "cpu"]) == 0
    originals = [frame.image for frame in open_source(str(image_dir))]
    records = list(read_images(out, "/camera/image_raw"))
    changes = [np.abs(r.image.astype(int) - o).max() for r, o in zip(records, originals)]
    assert changes[0] == 0 and changes[3] == 0 and 0 < changes[1] <= 4 and 0 < changes[2] <= 4
    assert read_labels(out).perturbation["model"].endswith("espnet_p_2_q_8.pth")


def test_unknown_kind_is_refused_before_writing(tmp_path, image_dir, capsys):
    assert main(["bag", "from-images", str(image_dir), str(tmp_path / "bag"), "--inject", "rain:1-3"]) == 2
    assert "anomaly kind 'rain': expected one of" in capsys.readouterr().err
    assert not (tmp_path / "bag").exists()


def test_make_bag_from_python_returns_what_the_cli_prints(tmp_path, image_dir, capsys):
    import json

    from daain_ros.errors import DaainError
    from daain_ros.evaluation.bag_make import BagOptions, make_bag
    from daain_ros.io.sources import image_folder, parse_frames

    options = BagOptions(rate=20.0, segments=(parse_segment("fog:3-5"),), seed=5)
    summary = make_bag(image_folder(image_dir, parse_frames("2:8")), tmp_path / "py", options)
    assert main(["bag", "from-images", str(image_dir), str(tmp_path / "cli"), "--frames", "2:8", "--rate", "20",
                 "--inject", "fog:3-5", "--seed", "5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert summary == dict(printed, bag=str(tmp_path / "py")) and summary["frames"] == 6
    for ours, theirs in zip(read_images(tmp_path / "py", "/camera/image_raw"),
                            read_images(tmp_path / "cli", "/camera/image_raw"), strict=True):
        assert ours.header_ns == theirs.header_ns
        np.testing.assert_array_equal(ours.image, theirs.image)
    assert read_labels(tmp_path / "py") == read_labels(tmp_path / "cli")
    with pytest.raises(DaainError, match="--rate -1: expected a positive frame rate"):
        BagOptions(rate=-1)
