# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bag play`` and ``daain bag record`` over real DDS (rclpy, Fast DDS), and play -> node -> record.

Player and recorder run as the commands themselves, in their own processes; every wait is bounded and
ends on an event (a subscriber matched, a message count, a verdict), not after a sleep.
"""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from node_harness import TOPIC, Client, start_node

from daain_ros.cli.main import main
from daain_ros.demo.report import node_verdicts
from daain_ros.evaluation import anomalies
from daain_ros.evaluation.bag_make import EPOCH_NS
from daain_ros.io.labels import BagLabels, Segment, write_labels
from daain_ros.io.rosbag import IMAGE, BagWriter, _header, bag_topics, header_stamp_ns, read_messages, typestore
from daain_ros.io.sources import stamp_at
from daain_ros.ros.health import format_stamp

DAAIN = str(Path(sys.executable).with_name("daain"))
DIAGNOSTICS = "diagnostic_msgs/msg/DiagnosticArray"


def daain(*args):
    return [DAAIN, "bag", *map(str, args)]


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def diagnostic(stamp_ns, level, values):
    types = typestore().types
    status = types["diagnostic_msgs/msg/DiagnosticStatus"](
        level=level, name="cam", message="ok", hardware_id="hw",
        values=[types["diagnostic_msgs/msg/KeyValue"](key=k, value=v) for k, v in values.items()])
    return types[DIAGNOSTICS](header=_header(stamp_ns, "cam"), status=[status])


@pytest.fixture
def mixed_bag(tmp_path):
    """Four 960x540 frames 0.5 s apart (1.5 MB each), their PNGs, a flag, a score and diagnostics."""
    rng = np.random.default_rng(5)
    path = tmp_path / "mixed"
    with BagWriter(path, "mcap") as bag:
        for i in range(4):
            stamp = EPOCH_NS + i * 500_000_000
            bag.add_image("/cam", stamp, rng.integers(0, 256, (540, 960, 3), np.uint8))
            bag.add_compressed("/cam/compressed", stamp + 1, rng.integers(0, 256, (24, 32, 3), np.uint8), "png")
            bag.add_bool("/flag", stamp + 2, i % 2 == 1)
            bag.add_float32("/score", stamp + 3, i * 1.5)
            bag._write("/diagnostics", stamp + 4, diagnostic(stamp, i % 3, {"frame": str(i)}))
    return path


def serialized(bag, topic):
    """``(log ns, CDR bytes)`` of each message of ``topic``."""
    return [(log_ns, bytes(typestore().serialize_cdr(msg, msg.__msgtype__)))
            for _, log_ns, msg in read_messages(bag, topic)]


def _recorder(out, *topics_and_options):
    recorder = subprocess.Popen(daain("record", out, "--topics", *topics_and_options), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    for line in recorder.stderr:  # its discovery timer runs from here on
        if "daain bag record: recording" in line:
            return recorder
    raise AssertionError(f"the recorder exited before it started, status {recorder.wait()}")


def test_play_and_record_round_trip_every_message_over_dds(mixed_bag, tmp_path):
    """The recorder is stopped once the player is gone.

    Fast DDS 3.2 can deadlock when two participants are destroyed at the same moment (``exit_if_stuck``);
    stopping one after the other keeps this test on our code.
    """
    out = tmp_path / "recorded"
    topics = ["/cam", "/cam/compressed", "/remapped/flag", "/score", "/diagnostics"]
    recorder = _recorder(out, *topics)
    try:
        played = subprocess.run(daain("play", mixed_bag, "--rate", 3, "--wait-for-subscribers",
                                      "--topic-remap", "/flag:=/remapped/flag"),
                                capture_output=True, text=True, timeout=120)
        assert played.returncode == 0, played.stderr[-2000:]
        recorder.send_signal(signal.SIGINT)  # every message is acknowledged: delivered, and drained on stop
        recorded, errors = recorder.communicate(timeout=60)
    finally:
        recorder.kill()
    assert recorder.returncode == 0, errors[-2000:]
    assert last_json(played.stdout)["published"] == dict.fromkeys(("/cam", "/cam/compressed", "/diagnostics",
                                                                   "/flag", "/score"), 4)
    assert "remap rule" not in played.stderr  # --topic-remap is ours, not a ROS argument
    assert last_json(played.stdout)["acknowledged"] is True
    assert last_json(played.stdout)["other_publishers"] == {} and "other publishers" not in played.stderr
    summary = last_json(recorded)
    assert summary["messages"] == dict.fromkeys(topics, 4) and summary["never_published"] == []
    assert summary["stopped_by_signal"] is True
    assert summary["qos"]["/cam"] == "reliable, volatile"  # the player's publishers are reliable
    assert bag_topics(out) == {
        "/cam": (IMAGE, 4), "/cam/compressed": ("sensor_msgs/msg/CompressedImage", 4),
        "/remapped/flag": ("std_msgs/msg/Bool", 4), "/score": ("std_msgs/msg/Float32", 4),
        "/diagnostics": (DIAGNOSTICS, 4)}
    for source, target in zip(["/cam", "/cam/compressed", "/flag", "/score", "/diagnostics"], topics):
        assert [raw for _, raw in serialized(out, target)] == [raw for _, raw in serialized(mixed_bag, source)]
    stamps = [header_stamp_ns(msg.header) for _, _, msg in read_messages(out, "/cam")]
    assert stamps == [EPOCH_NS + i * 500_000_000 for i in range(4)]
    received = [log_ns for log_ns, _ in serialized(out, "/cam")]
    # played at 3x, the frames leave 1.5 s / 3 apart in all; a player that ignored the timing takes ms
    assert (received[-1] - received[0]) / 1e9 > 0.3


def test_play_warns_of_other_publishers_on_the_topics_it_plays(mixed_bag):
    """A bag played onto a topic that a camera already publishes on: a node reading it would raise its flag."""
    camera = Client("live_camera")
    try:  # --delay gives DDS discovery time to show the camera to the player before it looks (it looks again at the
        # end, 1.5 s later: too soon on two cores kept busy by other processes)
        played = subprocess.run(daain("play", mixed_bag, "--topics", "/cam", "--topic-remap", f"/cam:={TOPIC}",
                                      "--delay", "2"), capture_output=True, text=True, timeout=120)
    finally:
        camera.close()
    assert played.returncode == 0, played.stderr[-2000:]
    assert last_json(played.stdout)["other_publishers"] == {TOPIC: ["/live_camera"]}
    assert f"daain bag play: warning: {TOPIC} has other publishers (/live_camera)" in played.stderr


def test_record_stops_after_max_messages_while_a_looping_player_goes_on(mixed_bag, tmp_path):
    out = tmp_path / "counted"
    recorder = _recorder(out, "/score", "/flag", "--max-messages", 6)
    player = subprocess.Popen(daain("play", mixed_bag, "--rate", 4, "--loop", "--topics", "/score", "/flag"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        recorded, errors = recorder.communicate(timeout=60)
        player.send_signal(signal.SIGINT)
        played, player_errors = player.communicate(timeout=60)
    finally:
        recorder.kill()
        player.kill()
    assert recorder.returncode == 0 and player.returncode == 0, errors[-2000:] + player_errors[-2000:]
    summary = last_json(recorded)
    assert sum(summary["messages"].values()) == 6 and summary["stopped_by_signal"] is False
    assert sum(count for _, count in bag_topics(out).values()) == 6
    assert last_json(played)["stopped_by_signal"] is True and last_json(played)["passes"] >= 1


def _stuck(block):
    code = ("import threading, time\nfrom daain_ros.ros.dds import exit_if_stuck\n"
            f"lock = threading.Lock()\nlock.acquire()\n{block}\nprint('finished')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_stuck_teardown_ends_the_process_and_a_quick_one_does_not():
    stuck = _stuck("with exit_if_stuck(0.5):\n    lock.acquire()")
    assert stuck.returncode == 1 and "finished" not in stuck.stdout
    assert "Timeout" in stuck.stderr and "<string>" in stuck.stderr  # every thread's traceback
    quick = _stuck("with exit_if_stuck(0.2):\n    pass\nlock.acquire(timeout=0.6)")
    assert quick.returncode == 0 and quick.stdout.strip() == "finished", quick.stderr


def test_record_stops_cleanly_on_sigterm(tmp_path):
    recorder = subprocess.Popen(daain("record", tmp_path / "signalled", "--topics", "/nobody"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in recorder.stderr:
            if "recording /nobody" in line:
                break
        recorder.send_signal(signal.SIGTERM)
        output, errors = recorder.communicate(timeout=30)
    finally:
        recorder.kill()
    assert recorder.returncode == 0, errors
    assert last_json(output)["stopped_by_signal"] is True
    assert (tmp_path / "signalled" / "metadata.yaml").is_file() and bag_topics(tmp_path / "signalled") == {}


def test_record_stops_after_its_duration(tmp_path, capsys):
    started = time.monotonic()
    assert main(["bag", "record", str(tmp_path / "timed"), "--topics", "/nobody", "--duration", "0.2"]) == 0
    assert time.monotonic() - started >= 0.2
    summary = last_json(capsys.readouterr().out)
    assert summary["stopped_by_signal"] is False and summary["wall_s"] >= 0.2
    assert summary["never_published"] == ["/nobody"] and bag_topics(tmp_path / "timed") == {}


def _fails(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("daain bag: error:") and expected in err, err


def test_play_and_record_argument_and_bag_errors_are_one_line(mixed_bag, tmp_path, capsys):
    _fails(capsys, ["bag", "play", str(mixed_bag), "--topics", "/nope"], "no topic /nope; the bag has /cam")
    _fails(capsys, ["bag", "play", str(mixed_bag), "--topic-remap", "flag=/x"], "expected /FROM:=/TO")
    _fails(capsys, ["bag", "play", str(mixed_bag), "--rate", "0"], "expected a rate > 0")
    (tmp_path / "junk.mcap").write_bytes(b"\x89MCAP0\r\n" + bytes(100))
    _fails(capsys, ["bag", "play", str(tmp_path / "junk.mcap")], "cannot be opened as a rosbag2 bag")
    _fails(capsys, ["bag", "record", str(mixed_bag), "--topics", "/x"], "exists already")
    _fails(capsys, ["bag", "record", str(tmp_path / "r"), "--topics", "x"], "expected absolute names")


# -- play -> detector_node -> record ----------------------------------------------------------------------

FIRST, COUNT, FLIPPED = 150, 6, (153, 156)
NODE_OUTPUTS = ("/daain/anomaly", "/daain/score", "/daain/segmentation", "/diagnostics")


def _stamp(frame):
    return EPOCH_NS + stamp_at(frame, 25.0)


@pytest.fixture
def drive_bag(tmp_path, drive_frames):
    """Six drive frames at 25 Hz, the last three flipped upside down (labelled vflip)."""
    path = tmp_path / "drive"
    images = list(drive_frames[FIRST:FIRST + COUNT])
    images[FLIPPED[0] - FIRST:] = anomalies.perturb("vflip", images[FLIPPED[0] - FIRST:])
    with BagWriter(path, "mcap") as bag:
        for offset, image in enumerate(images):
            bag.add_image("/camera/image_raw", _stamp(FIRST + offset), image)
    segment = Segment("vflip", *FLIPPED, *map(_stamp, FLIPPED))
    write_labels(path, BagLabels(topic="/camera/image_raw", rate_hz=25.0, epoch_ns=EPOCH_NS, first_frame=FIRST,
                                 frame_count=COUNT, segments=(segment,)))
    return path


@pytest.mark.slow
def test_played_into_the_node_and_recorded_gives_the_offline_flags(drive_bag, tmp_path, espnet_dir,
                                                                   fitted_detector):
    model = espnet_dir / "espnet_p_2_q_8.pth"
    node = start_node(tmp_path / "node.log", model_path=model, detector_path=fitted_detector, device="cpu",
                      image_reliability="reliable", stale_timeout=5.0)
    out = tmp_path / "recorded"
    recorder = subprocess.Popen(daain("record", out, "--topics", *NODE_OUTPUTS, TOPIC),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = Client("daain_bag_test_client", frames=False)  # the player is the one source
    try:
        assert main(["bag", "evaluate", str(drive_bag), "--detector", str(fitted_detector), "--model",
                     str(model), "--out", str(tmp_path / "offline"), "--device", "cpu"]) == 0
        client.wait_for_node(node.process)
        # the recorder subscribes to each topic once it sees a publisher; one that discovers the node late
        # (Fast DDS repeats a participant's announcement every few seconds) would miss the first verdicts
        assert client.spin_until(lambda: all(
            any(info.node_name == "daain_bag_recorder" for info in client.node.get_subscriptions_info_by_topic(t))
            for t in NODE_OUTPUTS), 60.0), "the recorder did not subscribe to the node's outputs"
        played = subprocess.run(daain("play", drive_bag, "--rate", 0.1, "--wait-for-subscribers", 2,
                                      "--topic-remap", f"/camera/image_raw:={TOPIC}"),
                                capture_output=True, text=True, timeout=120)
        assert played.returncode == 0, played.stderr[-2000:]
        last = _stamp(FIRST + COUNT - 1)
        client.verdict(format_stamp(last // 10**9, last % 10**9), timeout=60)
        recorder.send_signal(signal.SIGINT)
        recorded, errors = recorder.communicate(timeout=30)
    finally:
        recorder.kill()
        client.close()
        code = node.stop()
    assert recorder.returncode == 0 and code == 0, errors[-2000:] + (tmp_path / "node.log").read_text()[-2000:]
    summary = last_json(recorded)
    assert summary["qos"]["/daain/anomaly"] == "reliable, transient_local"
    with open(tmp_path / "offline" / "frames.csv", newline="") as table:
        offline = {int(r["stamp_ns"]): r for r in csv.DictReader(table)}
    live = node_verdicts(out)
    # the node judges the newest frame and may skip some; the first and the last it always judges
    assert {_stamp(FIRST), _stamp(FIRST + COUNT - 1)} <= set(live) <= set(offline)
    for stamp, (verdict, _) in live.items():
        assert verdict.anomalous == bool(int(offline[stamp]["debounced_flag"])), (stamp, verdict, offline[stamp])
        assert verdict.score == pytest.approx(float(offline[stamp]["score"]), rel=1e-4, abs=1e-4)
    assert {verdict.anomalous for verdict, _ in live.values()} == {False, True}
    segmented = [header_stamp_ns(msg.header) for _, _, msg in read_messages(out, "/daain/segmentation")]
    assert sorted(segmented) == sorted(live)
    assert [log for log, _ in serialized(out, TOPIC)] and len(serialized(out, TOPIC)) == COUNT
