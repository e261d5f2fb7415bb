# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""detector_node end to end: the node in its own process, a real rclpy client, footage frames in.

One node process serves the module (start-up costs seconds); every check waits for the verdict of the
frame it sent, identified by its stamp, so the tests do not depend on each other's timing.
"""

import math
import subprocess
import time
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from node_harness import RELIABLE, REPO, TOPIC, frame_msg, node_command, running_node
from rcl_interfaces.msg import Log
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from daain_ros.ros.fastdds import fastdds_profile
from daain_ros.ros.qos import LATCHED

# Longer than the default 0.5 s: frames here are sent one at a time, so a slow inference on a busy CI
# machine must not look like a stopped camera between them.
STALE_TIMEOUT = 1.0
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(espnet_dir, fitted_detector):
    from daain_ros.pipeline import Pipeline
    return Pipeline.load(espnet_dir / "espnet_p_2_q_8.pth", fitted_detector, device="cpu")


@pytest.fixture(scope="module")
def frames(pipeline, drive_frames):
    """Three footage frames judged normal, a vertically flipped one judged anomalous, the clean ones' results.

    The in-process results of the clean frames are what the node must reproduce.
    """
    candidates = drive_frames[0:221:20]
    judged = [(frame, result) for frame, result in zip(candidates, pipeline.process(candidates))
              if not result.anomalous]
    assert len(judged) >= 3, f"the detector flags {len(candidates) - len(judged)} of {len(candidates)} clean frames"
    clean, expected = zip(*judged[:3])
    flipped = np.ascontiguousarray(clean[0][::-1])
    assert pipeline.process([flipped])[0].anomalous, "the fitted detector does not flag a flipped frame"
    return clean, flipped, expected


@pytest.fixture(scope="module")
def node(espnet_dir, fitted_detector, tmp_path_factory, request):
    # the frames are judged in this process while the node starts
    with running_node(tmp_path_factory.mktemp("detector_node") / "node.log", "daain_test_client",
                      lambda: request.getfixturevalue("frames"), model_path=espnet_dir / "espnet_p_2_q_8.pth",
                      detector_path=fitted_detector, device="cpu", image_reliability="reliable",
                      stale_timeout=STALE_TIMEOUT, publish_color=True) as running:
        yield running


def judge(client, image_or_msg):
    """Sends a frame and returns (verdict, number of flags received before it was sent)."""
    flags = len(client.anomaly)
    msg = image_or_msg if isinstance(image_or_msg, Image) else frame_msg(image_or_msg)
    return client.verdict(client.send(msg)), flags


def test_clean_frames_come_out_segmented_scored_and_stamped(node, pipeline, frames):
    process, client = node
    width, height = pipeline.size
    for image, expected in zip(frames[0], frames[2]):
        scores = len(client.scores)
        verdict, flags = judge(client, image)
        stamp = verdict["frame stamp"]
        assert verdict["level"] in ("OK", "WARN") and verdict["anomaly"] == "false", verdict
        assert float(verdict["score"]) == pytest.approx(expected.score, rel=1e-4, abs=1e-4)
        assert float(verdict["threshold"]) == pytest.approx(expected.threshold, rel=1e-5)
        assert 0 < float(verdict["latency ms"]) < 30_000
        assert client.anomaly_after(flags, False), client.anomaly[flags:]
        assert client.spin_until(lambda: stamp in client.segmentation and stamp in client.color
                                 and len(client.scores) > scores, 5.0)
        assert client.scores[-1] == pytest.approx(expected.score, rel=1e-4, abs=1e-4)
        segmentation, color = client.segmentation[stamp], client.color[stamp]
        assert (segmentation.encoding, segmentation.width, segmentation.height, segmentation.step) == (
            "mono8", width, height, width)
        assert (color.encoding, color.width, color.height, color.step) == ("rgb8", width, height, 3 * width)
        assert segmentation.header.frame_id == color.header.frame_id == "test_camera"
        labels = np.frombuffer(segmentation.data, np.uint8).reshape(height, width)
        assert (labels == expected.labels).mean() > 0.999


@pytest.mark.parametrize("encoding", ["rgb8", "rgba8", "bgra8", "mono8"])
def test_every_supported_encoding_is_judged_like_its_bgr8_frame(node, frames, encoding):
    process, client = node
    image, expected = frames[0][1], frames[2][1]
    verdict, _ = judge(client, frame_msg(image, encoding))
    labels = client.segmentation[verdict["frame stamp"]]
    labels = np.frombuffer(labels.data, np.uint8).reshape(labels.height, labels.width)
    if encoding == "mono8":  # grey frames are judged, not refused
        assert math.isfinite(float(verdict["score"])) and labels.max() < 20
    else:
        assert float(verdict["score"]) == pytest.approx(expected.score, rel=1e-4, abs=1e-4)
        assert (labels == expected.labels).mean() > 0.999


def test_flipped_frame_raises_the_flag_and_clean_frames_lower_it(node, frames):
    process, client = node
    clean, flipped, _ = frames
    for image, anomalous in ((clean[0], False), (flipped, True), (clean[1], False)):
        verdict, flags = judge(client, image)
        assert verdict["anomaly"] == str(anomalous).lower(), verdict
        assert verdict["level"] == "ERROR" if anomalous else verdict["level"] in ("OK", "WARN")
        assert client.anomaly_after(flags, anomalous), client.anomaly[flags:]


def test_late_subscriber_gets_the_current_flag_at_once(node, frames):
    process, client = node
    clean, flipped, _ = frames
    for image, anomalous in ((flipped, True), (clean[0], False)):
        verdict, _ = judge(client, image)
        assert verdict["anomaly"] == str(anomalous).lower()
        late = []
        sub = client.node.create_subscription(Bool, "/daain/anomaly", lambda m: late.append(m.data),
                                              LATCHED)
        try:
            assert client.spin_until(lambda: late, 5.0), "no latched flag for a late subscriber"
        finally:
            client.node.destroy_subscription(sub)
        assert late[0] is anomalous


@pytest.mark.parametrize("topic, msg_type, qos, named", [
    ("/daain/anomaly", Bool, LATCHED, "1 other publisher(s) on /daain/anomaly (/daain_test_client)"),
    (TOPIC, Image, RELIABLE, f"2 publishers on {TOPIC} (/daain_test_client, /daain_test_client)"),
], ids=["on the flag", "on the frames"])
def test_another_publisher_raises_the_flag_until_it_goes(node, frames, topic, msg_type, qos, named):
    """Another writer on the flag hides verdicts; another source of frames mixes two cameras in one flag.

    The first: a detector without a namespace of its own, a replayed bag with its flag; the second: a bag
    replayed onto the camera's topic.
    """
    process, client = node
    clean = frames[0][0]
    verdict, flags = judge(client, clean)
    assert verdict["anomaly"] == "false", verdict
    other = client.node.create_publisher(msg_type, topic, qos)  # publishes nothing
    try:
        # the heartbeat (every second) reads the graph and republishes the last verdict, now raised
        assert client.spin_until(lambda: any(named in s["message"] for s in client.statuses[-3:]), 5.0), \
            [s["message"] for s in client.statuses[-3:]]
        assert client.spin_until(lambda: client.anomaly[-1] is True, 2.0), "the republished flag is not raised"
        verdict, flags = judge(client, clean)
        assert (verdict["anomaly"], verdict["level"]) == ("true", "ERROR") and named in verdict["message"], verdict
        assert verdict["message"].endswith(("this node's verdict: normal", "verdict: score near the threshold"))
        assert client.anomaly_after(flags, True) and False not in client.anomaly[flags:]
    finally:
        client.node.destroy_publisher(other)
    assert client.spin_until(lambda: named not in client.statuses[-1]["message"], 5.0), "the flag stayed raised"
    verdict, flags = judge(client, clean)
    assert verdict["anomaly"] == "false", verdict
    assert client.anomaly_after(flags, False)


def test_threshold_is_set_at_run_time_and_inf_or_nan_is_refused(node, frames):
    process, client = node
    clean, calibrated = frames[0][0], frames[2][0].threshold
    for bad in (float("inf"), float("nan")):
        refused = client.set_parameters(threshold=bad)
        assert not refused.successful and "expected a finite score" in refused.reason, refused
    verdict, _ = judge(client, clean)  # still judged at the calibrated threshold
    assert verdict["anomaly"] == "false" and float(verdict["threshold"]) == pytest.approx(calibrated, rel=1e-5)
    logs = []
    rosout = client.node.create_subscription(Log, "/rosout", logs.append, 100)
    try:
        assert client.set_parameters(threshold=0.0).successful  # every score is above 0
        verdict, _ = judge(client, clean)
        assert (verdict["anomaly"], float(verdict["threshold"])) == ("true", 0.0), verdict
        # a change that decides what is flagged leaves a warning in the log, with what is now in force
        assert client.spin_until(lambda: any(
            log.name == "detector_node" and log.level == Log.WARN and "set at run time: threshold 0.0" in log.msg
            and "threshold 0," in log.msg for log in logs), 5.0), [log.msg for log in logs]
    finally:
        assert client.set_parameters(threshold=-1.0).successful  # back to the calibrated one
        client.node.destroy_subscription(rosout)
    assert judge(client, clean)[0]["anomaly"] == "false"


def test_a_verdict_later_than_max_latency_raises_the_flag(node, frames):
    """Set at run time so low that every verdict is late: the clean frame's "normal" must not stand."""
    process, client = node
    clean = frames[0][0]
    for bad in (0.0, -1.0, float("inf")):
        refused = client.set_parameters(max_latency=bad)
        assert not refused.successful and "expected a finite number of seconds > 0" in refused.reason, refused
    assert client.set_parameters(max_latency=1e-6).successful
    try:
        verdict, flags = judge(client, clean)
        assert (verdict["anomaly"], verdict["level"]) == ("true", "ERROR"), verdict
        assert "beyond max_latency 1e-06 s: too old to stand for the camera now" in verdict["message"], verdict
        assert client.anomaly_after(flags, True)
    finally:
        assert client.set_parameters(max_latency=1.0).successful
    verdict, flags = judge(client, clean)
    assert verdict["anomaly"] == "false", verdict
    assert client.anomaly_after(flags, False)


def test_k_of_n_debounce_is_set_at_run_time_and_holds_the_flag(node, frames):
    process, client = node
    clean, flipped, _ = frames
    assert not client.set_parameters(debounce_k=3, debounce_n=2).successful
    assert not client.set_parameters(stale_timeout=2.0).successful  # read-only
    assert client.set_parameters(debounce_k=2, debounce_n=3).successful
    try:
        levels = [judge(client, image)[0] for image in (flipped, flipped, clean[0], clean[1])]
    finally:
        assert client.set_parameters(debounce_k=1, debounce_n=1).successful
    assert [(v["level"], v["anomaly"]) for v in levels[:3]] == [
        ("WARN", "false"), ("ERROR", "true"), ("ERROR", "true")], levels
    assert levels[3]["anomaly"] == "false" and levels[3]["level"] in ("OK", "WARN"), levels


MALFORMED = {
    "unsupported encoding": Image(height=4, width=4, encoding="yuv422", step=8, data=bytes(32)),
    "16-bit encoding": Image(height=4, width=4, encoding="16UC1", step=8, data=bytes(32)),
    "step shorter than a row": Image(height=4, width=4, encoding="rgb8", step=6, data=bytes(24)),
    "data shorter than step x height": Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(40)),
    "data longer than step x height": Image(height=4, width=4, encoding="bgr8", step=12, data=bytes(60)),
    "empty data": Image(height=480, width=640, encoding="bgr8", step=1920, data=b""),
    "0x0": Image(height=0, width=0, encoding="rgb8", step=0, data=b""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_message_raises_the_flag_and_the_node_goes_on(node, frames, case):
    process, client = node
    verdict, flags = judge(client, MALFORMED[case])
    assert (verdict["level"], verdict["anomaly"]) == ("ERROR", "true"), verdict
    assert verdict["message"].startswith("cannot judge frame"), verdict
    assert client.anomaly_after(flags, True)
    verdict, flags = judge(client, frames[0][0])
    assert verdict["anomaly"] == "false" and process.poll() is None
    assert client.anomaly_after(flags, False)


def test_stopped_input_reports_stale_within_two_timeouts(node, frames):
    process, client = node
    statuses, flags, sent = len(client.statuses), len(client.anomaly), time.monotonic()
    verdict = client.verdict(client.send_frame(frames[0][0]))
    assert verdict["anomaly"] == "false"
    stale = client.spin_until(lambda: [s for s in client.statuses[statuses:] if s["level"] == "STALE"], 5.0)
    assert time.monotonic() - sent <= 2 * STALE_TIMEOUT, "STALE came late"
    assert stale[0]["message"].startswith("no input") and stale[0]["anomaly"] == "true"
    assert client.anomaly_after(flags, True)


def test_burst_of_200_frames_at_100_hz_drops_old_frames_keeps_order_and_node_responsive(node, frames):
    """Frames are dropped, not queued (the node's memory stays bounded; its RSS is measured by daain bench)."""
    process, client = node
    image = frames[0][0]
    first, _ = judge(client, image)
    start, statuses, stamps = time.monotonic(), len(client.statuses), []
    for i in range(200):
        stamp = client.send_frame(image)
        stamps.append(stamp)
        client.spin_until(lambda: time.monotonic() >= start + (i + 1) / 100, 0.05)
    sent = time.monotonic()
    last = client.verdict(stamp, timeout=10.0)
    answered_s = time.monotonic() - sent
    processed = int(last["frames processed"]) - int(first["frames processed"])
    dropped = int(last["frames dropped"]) - int(first["frames dropped"])
    lost = int(last["frames lost"]) - int(first["frames lost"])  # overwritten before the node's callback took them
    assert sent - start < 4.0, "the test could not publish at about 100 Hz"
    assert answered_s < 5.0, f"newest frame judged {answered_s:.1f} s after the burst: a backlog"
    assert processed + dropped + lost == 200 and dropped >= 100, (processed, dropped, lost)
    assert last["anomaly"] == "false" and process.poll() is None
    sent_stamps = set(stamps)
    judged = [s["frame stamp"] for s in client.statuses[statuses:] if s["frame stamp"] in sent_stamps]
    judged = [s for i, s in enumerate(judged) if i == 0 or s != judged[i - 1]]  # a graph change republishes one
    assert len(judged) == processed and judged == sorted(judged, key=float), "verdicts out of frame order"


def test_bad_model_or_detector_stops_start_up_with_one_line_naming_it(espnet_dir, fitted_detector, tmp_path):
    model = espnet_dir / "espnet_p_2_q_8.pth"
    cases = {  # name -> (the file the error must name, parameters)
        "missing model": (tmp_path / "espnet.pth", dict(model_path=tmp_path / "espnet.pth")),
        "missing detector": (tmp_path / "detector", dict(detector_path=tmp_path / "detector")),
        "other weights": (fitted_detector, dict(model_path=espnet_dir / "espnet_p_2_q_5.pth")),
        "other size": (fitted_detector, dict(width=1024)),
    }
    runs = {name: subprocess.Popen(node_command(**{"model_path": model, "detector_path": fitted_detector,
                                                   "device": "cpu", **params}),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name, (_, params) in cases.items()}
    for name, run in runs.items():
        output = run.communicate(timeout=120)[0]
        errors = [line for line in output.splitlines() if "cannot start" in line]
        assert run.returncode == 2 and "Traceback" not in output, (name, output)
        assert len(errors) == 1 and str(cases[name][0]) in errors[0], (name, output)


def test_fastdds_profile_is_found_and_holds_frames_of_1024x512():
    profile = fastdds_profile()
    assert profile is not None and profile.name == "fastdds.xml"
    assert profile.read_bytes() == (REPO / "config" / "fastdds.xml").read_bytes()
    ns = {"dds": "http://www.eprosima.com"}
    root = ElementTree.parse(profile).getroot()
    segment = int(root.find(".//dds:transport_descriptor[dds:type='SHM']/dds:segment_size", ns).text)
    assert segment >= 4 * 1024 * 512 * 3
    assert root.find(".//dds:transport_descriptor[dds:type='UDPv4']", ns) is not None
