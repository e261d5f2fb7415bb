# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bag evaluate``: the per-frame table, summary, report, plot and output bag, and its error paths."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from daain_ros.cli.main import main
from daain_ros.evaluation import anomalies
from daain_ros.evaluation.bag_make import EPOCH_NS
from daain_ros.evaluation.bag_replay import COLUMNS
from daain_ros.io.labels import BagLabels, Segment, write_labels
from daain_ros.io.rosbag import IMAGE, BagWriter, _header, bag_topics, read_messages, typestore
from daain_ros.io.sources import stamp_at
from daain_ros.ros.debounce import KOfN

TOPIC = "/cam/image"
RATE = 25.0
FIRST = 150
SEGMENT = (153, 156)


def stamp(frame):
    return EPOCH_NS + stamp_at(frame, RATE)


def write_bag(path, images, segments=(), storage="mcap"):
    """A bag of ``images`` as source frames FIRST, FIRST+1, ... with labels.json for ``segments``."""
    with BagWriter(path, storage) as bag:
        for offset, image in enumerate(images):
            bag.add_image(TOPIC, stamp(FIRST + offset), image, frame_id="front")
    write_labels(path, BagLabels(topic=TOPIC, rate_hz=RATE, epoch_ns=EPOCH_NS, first_frame=FIRST,
                                 frame_count=len(images),
                                 segments=tuple(Segment(k, s, e, stamp(s), stamp(e)) for k, s, e in segments)))
    return path


@pytest.fixture(scope="module")
def model_path(espnet_dir):
    return espnet_dir / "espnet_p_2_q_8.pth"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, drive_frames):
    """8 drive frames, 153-155 flipped upside down and labelled vflip."""
    images = list(drive_frames[FIRST:FIRST + 8])
    start, end = SEGMENT
    images[start - FIRST:end - FIRST] = anomalies.perturb("vflip", images[start - FIRST:end - FIRST])
    bag = write_bag(tmp_path_factory.mktemp("labelled") / "bag", images, [("vflip", start, end)])
    return bag, images


@pytest.fixture(scope="module")
def evaluated(labelled, model_path, fitted_detector, tmp_path_factory):
    """The evaluation (batches of 3, debounce 2 of 2) and what the pipeline says of the same frames."""
    from daain_ros.pipeline import Pipeline
    bag, images = labelled
    out = tmp_path_factory.mktemp("evaluation")
    assert main(["bag", "evaluate", str(bag), "--detector", str(fitted_detector), "--model", str(model_path),
                 "--out", str(out), "--batch-size", "3", "--debounce-k", "2", "--debounce-n", "2",
                 "--device", "cpu"]) == 0
    expected = Pipeline.load(model_path, fitted_detector, "cpu").process(images)
    with open(out / "frames.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    return out, rows, expected


def test_frames_table_matches_the_pipeline_frame_by_frame(evaluated):
    out, rows, expected = evaluated
    assert tuple(rows[0]) == COLUMNS and len(rows) == 8
    debounce = KOfN(2, 2)
    for offset, (row, result) in enumerate(zip(rows, expected)):
        frame = FIRST + offset
        assert (int(row["index"]), int(row["stamp_ns"])) == (offset, stamp(frame))
        assert float(row["time_s"]) == pytest.approx(offset / RATE)
        assert row["label"] == ("vflip" if SEGMENT[0] <= frame < SEGMENT[1] else "")
        assert float(row["score"]) == pytest.approx(result.score, rel=1e-4, abs=1e-4)
        assert float(row["threshold"]) == pytest.approx(result.threshold, rel=1e-5)
        assert int(row["flag"]) == result.anomalous
        assert int(row["debounced_flag"]) == debounce.update(result.anomalous)
        assert float(row["latency_ms"]) > 0 and row["error"] == ""
    # the flipped frames are caught, so the test can tell a debounced flag from a raw one
    assert all(r.anomalous for r in expected[SEGMENT[0] - FIRST:SEGMENT[1] - FIRST])


def test_summary_counts_runs_metrics_and_segment_detection(evaluated):
    out, rows, expected = evaluated
    summary = json.loads((out / "summary.json").read_text())
    flags = [r.anomalous for r in expected]
    assert (summary["frames"], summary["processed"], summary["unreadable"]) == (8, 8, 0)
    assert summary["flagged"] == sum(flags) and summary["flagged_share"] == pytest.approx(sum(flags) / 8)
    assert summary["debounced_flagged"] == sum(int(r["debounced_flag"]) for r in rows)
    assert summary["longest_flagged_run"]["frames"] >= SEGMENT[1] - SEGMENT[0]
    assert summary["debounce"] == {"k": 2, "n": 2} and summary["batch_size"] == 3
    assert summary["labels"].endswith("labels.json") and summary["topic"] == TOPIC
    vflip = summary["metrics"]["vflip"]
    assert (vflip["clean"], vflip["anomalous"]) == (5, 3)
    clean = [r.score for r, f in zip(expected, range(FIRST, FIRST + 8)) if not SEGMENT[0] <= f < SEGMENT[1]]
    flipped = [r.score for r in expected[SEGMENT[0] - FIRST:SEGMENT[1] - FIRST]]
    assert vflip["auroc"] == pytest.approx(np.mean([[a > c for c in clean] for a in flipped]))
    (segment,) = summary["segments"]
    assert (segment["kind"], segment["frames"], segment["flagged"]) == ("vflip", 3, 3) and segment["detected"]
    first = 0 if flags[SEGMENT[0] - FIRST - 1] else 1  # 2 of 2: the flag rises on the segment's 2nd frame
    assert (segment["first_flag_frames"], segment["first_raw_flag_frames"]) == (first, 0)
    assert segment["first_flag_s"] == pytest.approx(first / RATE)
    report = (out / "report.md").read_text()
    assert "| vflip | 5 | 3 |" in report and "vflip:153-156" in report and "scores.png" in report
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_output_bag_has_the_input_and_the_detector_topics_on_the_original_stamps(evaluated, labelled):
    out, rows, expected = evaluated
    bag, images = labelled
    stamps = [stamp(FIRST + i) for i in range(8)]
    assert bag_topics(out / "bag") == {TOPIC: (IMAGE, 8), "/daain/segmentation": (IMAGE, 8),
                                       "/daain/anomaly": ("std_msgs/msg/Bool", 8),
                                       "/daain/score": ("std_msgs/msg/Float32", 8)}
    serialize = typestore().serialize_cdr
    copies = zip(read_messages(bag, TOPIC), read_messages(out / "bag", TOPIC), strict=True)
    for (_, log_in, msg_in), (_, log_out, msg_out) in copies:
        assert log_in == log_out and bytes(serialize(msg_in, IMAGE)) == bytes(serialize(msg_out, IMAGE))
    segmentation = list(read_messages(out / "bag", "/daain/segmentation"))
    for (_, log_ns, msg), result, when in zip(segmentation, expected, stamps, strict=True):
        assert log_ns == when and msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == when
        assert (msg.encoding, msg.header.frame_id) == ("mono8", "front")
        agreement = (msg.data.reshape(msg.height, msg.width) == result.labels).mean()
        assert agreement > 0.999  # batches of 3 against 8 may differ in the last bits of a few logits
    scores = [(log_ns, msg.data) for _, log_ns, msg in read_messages(out / "bag", "/daain/score")]
    assert [s for s, _ in scores] == stamps
    np.testing.assert_allclose([v for _, v in scores], [r.score for r in expected], rtol=1e-4, atol=1e-4)
    flags = [(log_ns, msg.data) for _, log_ns, msg in read_messages(out / "bag", "/daain/anomaly")]
    assert flags == [(s, bool(int(r["debounced_flag"]))) for s, r in zip(stamps, rows)]


def test_evaluate_bag_from_python_returns_the_summary_the_cli_writes(evaluated, labelled, model_path,
                                                                     fitted_detector, tmp_path):
    from daain_ros.evaluation.bag_replay import evaluate_bag
    out, _, _ = evaluated
    bag, _ = labelled
    summary = evaluate_bag(bag, detector=fitted_detector, model=model_path, out=tmp_path / "py", batch_size=3,
                           debounce_k=2, debounce_n=2, device="cpu")
    written = json.loads((out / "summary.json").read_text())
    assert summary == json.loads((tmp_path / "py" / "summary.json").read_text())
    for key in ("frames", "unreadable", "flagged", "debounced_flagged", "segments", "topic", "labels"):
        assert summary[key] == written[key], key
    assert summary["metrics"]["vflip"]["auroc"] == pytest.approx(written["metrics"]["vflip"]["auroc"])


def test_unreadable_frames_are_flagged_counted_and_listed(tmp_path, drive_frames, model_path, fitted_detector):
    types = typestore().types
    bag = tmp_path / "bag"
    with BagWriter(bag, "mcap") as writer:
        writer.add_image(TOPIC, stamp(0), drive_frames[10])
        writer._write(TOPIC, stamp(1), types[IMAGE](header=_header(stamp(1), "front"), height=4, width=4,
                                                    encoding="rgb8", is_bigendian=0, step=12,
                                                    data=np.zeros(7, np.uint8)))
        writer._write(TOPIC, stamp(2), types[IMAGE](header=_header(stamp(2), "front"), height=2, width=2,
                                                    encoding="yuv422", is_bigendian=0, step=4,
                                                    data=np.zeros(8, np.uint8)))
        writer.add_image(TOPIC, stamp(3), drive_frames[11])
    out = tmp_path / "out"
    assert main(["bag", "evaluate", str(bag), "--topic", TOPIC, "--detector", str(fitted_detector),
                 "--model", str(model_path), "--out", str(out), "--device", "cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["frames"], summary["processed"], summary["unreadable"]) == (4, 2, 2)
    assert "metrics" not in summary and summary["labels"] is None
    (bad_size, bad_encoding) = summary["unreadable_frames"]
    assert (bad_size["index"], bad_size["stamp_ns"]) == (1, stamp(1))
    assert f"{TOPIC} frame 1: image data has 7 bytes" in bad_size["error"]
    assert bad_encoding["index"] == 2 and "encoding 'yuv422' is not supported" in bad_encoding["error"]
    rows = list(csv.DictReader(open(out / "frames.csv", newline="")))
    assert [(r["flag"], r["score"] == "", r["error"] != "") for r in rows[1:3]] == [("1", True, True)] * 2
    assert summary["flagged"] >= 2 and summary["longest_flagged_run"]["frames"] >= 2
    assert "frame 2 (stamp" in (out / "report.md").read_text()
    flags = {log_ns: msg.data for _, log_ns, msg in read_messages(out / "bag", "/daain/anomaly")}
    assert flags[stamp(1)] is True and flags[stamp(2)] is True
    assert [log_ns for _, log_ns, _ in read_messages(out / "bag", "/daain/score")] == [stamp(0), stamp(3)]


def _fails(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith("daain bag: error:")
    return err


def test_bag_and_topic_errors_are_one_line(tmp_path, capsys):
    """Checked before the model and detector are loaded, so these paths need not exist."""
    good = write_bag(tmp_path / "good", [np.zeros((8, 8, 3), np.uint8)])

    def args(out):
        return ["--out", str(tmp_path / out), "--detector", str(tmp_path / "det"), "--model", str(tmp_path / "m")]

    err = _fails(capsys, ["bag", "evaluate", str(good), "--topic", "/nope", *args("o1")])
    assert f"no topic /nope; the bag has {TOPIC} (sensor_msgs/msg/Image, 1 messages)" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text((good / "metadata.yaml").read_text())
    (broken / "good.mcap").write_bytes(bytes(1000))
    err = _fails(capsys, ["bag", "evaluate", str(broken), "--topic", TOPIC, *args("o2")])
    assert "cannot be opened as a rosbag2 bag" in err
    (tmp_path / "notes.txt").write_text("not a bag")
    err = _fails(capsys, ["bag", "evaluate", str(tmp_path / "notes.txt"), "--topic", TOPIC, *args("o3")])
    assert "notes.txt: cannot be opened as a rosbag2 bag" in err
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3"))
    (tmp_path / "done" / "bag").mkdir(parents=True)
    (tmp_path / "done" / "frames.csv").write_text("an earlier evaluation")
    err = _fails(capsys, ["bag", "evaluate", str(good), *args("done")])
    assert "bag exists already: evaluate into a new --out directory" in err
    assert (tmp_path / "done" / "frames.csv").read_text() == "an earlier evaluation"


def test_a_bag_truncated_mid_stream_names_the_message_and_leaves_no_half_output(tmp_path, capsys, model_path,
                                                                                fitted_detector):
    rng = np.random.default_rng(0)
    bag = write_bag(tmp_path / "bag", [rng.integers(0, 256, (60, 80, 3), np.uint8) for _ in range(6)],
                    storage="sqlite3")
    database = bag / "bag.db3"
    database.write_bytes(database.read_bytes()[:-1000])  # sqlite3 opens it and fails part-way
    out = tmp_path / "out"
    err = _fails(capsys, ["bag", "evaluate", str(bag), "--detector", str(fitted_detector), "--model",
                          str(model_path), "--out", str(out), "--device", "cpu", "--batch-size", "2"])
    assert err.endswith(f"{bag}: cannot be read past message 5: database disk image is malformed")
    assert not (out / "bag").exists() and not (out / "frames.csv").exists()


def test_only_unreadable_frames_is_an_error(tmp_path, capsys, model_path, fitted_detector):
    types = typestore().types
    with BagWriter(tmp_path / "bag", "mcap") as writer:
        for i in range(2):
            writer._write(TOPIC, stamp(i), types[IMAGE](header=_header(stamp(i), "f"), height=2, width=2,
                                                        encoding="16UC1", is_bigendian=0, step=4,
                                                        data=np.zeros(8, np.uint8)))
    err = _fails(capsys, ["bag", "evaluate", str(tmp_path / "bag"), "--detector", str(fitted_detector),
                          "--model", str(model_path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert (f"none of the 2 frames of {TOPIC} could be read; first: {TOPIC} frame 0: image encoding '16UC1'"
            in err)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["unreadable"] == 2


def test_the_bag_commands_load_without_rclpy():
    code = ("import sys; sys.modules['rclpy'] = None; from daain_ros.cli.main import build_parser; "
            "build_parser().parse_args(['bag', 'play', 'x']); "
            "import daain_ros.evaluation.bag_replay, daain_ros.evaluation.bag_report")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_daain_report_renders_the_bag_evaluation_as_its_report_does(evaluated, tmp_path, head_commit):
    from daain_ros.cli.main import main
    out, _, _ = evaluated
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["command"] and summary["provenance"]["machine"]["cpu_count"] >= 1
    doc = tmp_path / "docs" / "results.md"
    assert main(["report", str(doc), str(out)]) == 0
    text = doc.read_text()
    table_row = next(line for line in (out / "report.md").read_text().splitlines()
                     if line.startswith(f"| {summary['frames']} |"))
    assert table_row in text and f"{summary['frames_per_s']:.2f}" in table_row
    commit = summary["provenance"]["commit"]
    assert head_commit.startswith(commit.removesuffix("-dirty")) and f"- commit: {commit}" in text
    assert (tmp_path / "docs" / "results" / "bag" / "scores.png").is_file()
