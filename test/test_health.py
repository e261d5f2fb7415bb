# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The fail-closed verdict rules and the throttled cause log (ROS-free)."""

import math
import subprocess
import sys

import pytest

from daain_ros.ros import health


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_non_finite_score_is_anomalous_even_when_the_debounce_holds_the_flag(score):
    verdict = health.frame_verdict(score, 1.0, frame_anomalous=True, flag=False)
    assert (verdict.anomalous, verdict.level, verdict.cause) == (True, health.ERROR, "score")


@pytest.mark.parametrize("score,frame_anomalous,flag,expected", [
    (0.5, False, False, (False, health.OK)),
    (0.95, False, False, (False, health.WARN)),      # above the warn level, below the threshold
    (1.5, True, False, (False, health.WARN)),        # anomalous frame held back by k-of-n
    (1.5, True, True, (True, health.ERROR)),
    (0.5, False, True, (True, health.ERROR)),        # clean frame, flag still raised by the window
])
def test_a_raised_flag_is_always_error_and_a_lowered_one_never(score, frame_anomalous, flag, expected):
    verdict = health.frame_verdict(score, 1.0, frame_anomalous, flag, warn_above=0.9, window="1 of the last 1")
    assert (verdict.anomalous, verdict.level) == expected
    assert (verdict.score, verdict.threshold) == (score, 1.0)


def test_failures_and_staleness_raise_the_flag():
    for verdict in (health.failure("input", "bad"), health.stale(0.7, "/cam"), health.waiting("/cam")):
        assert verdict.anomalous and verdict.level in (health.ERROR, health.STALE)
    assert health.stale(0.7, "/cam").message == "no input on /cam for 0.70 s"


def test_key_values_carry_the_documented_keys():
    values = dict(health.key_values(health.frame_verdict(0.25, 1.0, False, False), "12.000000005", 41.26, 7, 3, 2))
    assert values == {"anomaly": "false", "score": "0.25", "threshold": "1", "frame stamp": "12.000000005",
                      "latency ms": "41.3", "frames processed": "7", "frames dropped": "3", "frames lost": "2"}
    assert health.format_stamp(12, 5) == "12.000000005"
    assert dict(health.key_values(health.failure("input", "x"), None, None, 0, 0, 0))["score"] == "nan"


def test_each_cause_is_logged_at_once_then_throttled_with_a_count():
    now = [0.0]
    throttle = health.CauseThrottle(period=10.0, clock=lambda: now[0])
    lines = []
    for t, cause in [(0, "input"), (1, "input"), (2, "stale"), (3, "input"), (11, "input"), (11.5, "stale")]:
        now[0] = t
        lines.append(throttle.filter(cause, f"{cause} at {t}"))
    assert lines == ["input at 0", None, "stale at 2", None, "input at 11 (2 more since the last report)", None]


def test_ros_free_node_parts_import_without_rclpy():
    code = ("import sys; sys.modules['rclpy'] = None; "
            "import daain_ros.ros.debounce, daain_ros.ros.frame_slot, daain_ros.ros.health, daain_ros.io.image_codec")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_shared_flag_is_raised_at_error_and_names_the_other_publishers():
    normal = health.frame_verdict(0.5, 1.0, False, False)
    assert health.shared_flag(normal, (), "/daain/anomaly") is normal
    shared = health.shared_flag(normal, ("/front/detector_node", "/rosbag2_player"), "/daain/anomaly")
    assert (shared.anomalous, shared.level, shared.cause) == (True, health.ERROR, "shared flag")
    assert (shared.score, shared.threshold) == (0.5, 1.0)
    assert shared.message.startswith("2 other publisher(s) on /daain/anomaly (/front/detector_node, /rosbag2_player)")
    assert shared.message.endswith("this node's verdict: normal")


def test_frames_from_several_sources_raise_the_flag_at_error_and_name_them():
    normal = health.frame_verdict(0.5, 1.0, False, False)
    assert health.mixed_input(normal, (), "/camera/image_raw") is normal
    assert health.mixed_input(normal, ("/camera_driver",), "/camera/image_raw") is normal
    mixed = health.mixed_input(normal, ("/camera_driver", "/rosbag2_player"), "/camera/image_raw")
    assert (mixed.anomalous, mixed.level, mixed.cause) == (True, health.ERROR, "mixed input")
    assert (mixed.score, mixed.threshold) == (0.5, 1.0)
    assert mixed.message.startswith("2 publishers on /camera/image_raw (/camera_driver, /rosbag2_player)")
    assert mixed.message.endswith("this node's verdict: normal")
    assert health.mixed_input(normal, ("/a", "/a"), "/camera/image_raw").anomalous  # one node, two publishers


def test_a_late_verdict_is_raised_at_error_and_keeps_the_frames_own():
    late = health.late(health.frame_verdict(0.5, 1.0, False, False), 1.234, 1.0)
    assert (late.anomalous, late.level, late.cause) == (True, health.ERROR, "late")
    assert (late.score, late.threshold) == (0.5, 1.0)
    assert late.message == ("verdict 1.23 s after the frame arrived, beyond max_latency 1 s: too old to stand for "
                            "the camera now; this node's verdict: normal")
