# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain demo`` and its embedded default detector.

Separation on generated anomalies, the synthetic data source, the drive plan, process handling, and the whole demo end
to end in its quick form (real processes, real DDS, the packaged defaults).
"""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from daain_ros.cli.main import main
from daain_ros.demo.default_assets import default_model_path
from daain_ros.demo.drive import (DEMO_FIRST, DEMO_SEED, DEMO_STREET, QUICK_FRAMES, DemoConfig, _watch,
                                  default_detector_path, drive_spec, plan_segments, ros_environment)
from daain_ros.demo.report import drive_parts, summarize_parts
from daain_ros.errors import DaainError, DataSourceError
from daain_ros.evaluation import anomalies
from daain_ros.evaluation.metrics import auroc
from daain_ros.io.labels import BagLabels, Segment
from daain_ros.io.sources import SYNTHETIC_FRAMES, open_source, parse_frames, stamp_at
from daain_ros.io.synthetic import FPS, drive
from daain_ros.ros.health import ERROR, OK, Verdict
from daain_ros.ros.processes import ChildProcess

DAAIN = str(Path(sys.executable).with_name("daain"))
FINAL_LINE = re.compile(r"^demo: (\d+)/(\d+) injected segments flagged, false-positive rate (\d\.\d\d)$")


# -- the synthetic data source ------------------------------------------------------------------------------

def test_synthetic_source_streams_consecutive_drives_and_cuts_ranges_inside_them():
    source = open_source("synthetic:5:7:3")  # drives of 3, 3 and 1 frames down streets 5, 6 and 7
    frames = list(source)
    assert (source.total, source.rate, [f.index for f in frames]) == (7, FPS, list(range(7)))
    assert [f.stamp_ns for f in frames] == [stamp_at(i, FPS) for i in range(7)]
    expected = [image for seed, length in ((5, 3), (6, 3), (7, 1)) for image, _ in drive(seed, length)]
    assert all(np.array_equal(f.image, e) for f, e in zip(frames, expected))
    middle = list(open_source("synthetic:5:7:3", parse_frames("4:6")))  # starts inside the second street
    assert [f.index for f in middle] == [4, 5]
    assert all(np.array_equal(f.image, frames[f.index].image) for f in middle)
    assert open_source("synthetic:3").total == SYNTHETIC_FRAMES


@pytest.mark.parametrize("spec", ["synthetic:", "synthetic:x", "synthetic:1:0", "synthetic:1:2:0",
                                  "synthetic:1:2:3:4", "synthetic:-1"])
def test_synthetic_source_rejects_malformed_specs(spec):
    with pytest.raises(DataSourceError, match=r"expected synthetic:SEED\[:N\[:LEN\]\]"):
        open_source(spec)


# -- the embedded default detector ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def default_pipeline():
    from daain_ros.pipeline import Pipeline
    return Pipeline.load(default_model_path(), default_detector_path(), "cpu")


def _scores(pipeline, images):
    return np.array([r.score for start in range(0, len(images), 8) for r in pipeline.process(images[start:start + 8])])


@pytest.mark.slow
def test_default_detector_separates_generated_anomalies_from_clean_frames(default_pipeline):
    info = json.loads((default_detector_path() / "detector.json").read_text())
    assert info["segmentation"]["sha256"] == default_pipeline.model.sha256
    # held-out frames of the demo street: the detector was fitted on its frames 0-199
    clean = [f.image for f in open_source(f"synthetic:{DEMO_SEED}:400", parse_frames("200:400"))][::4]
    clean_scores = _scores(default_pipeline, clean)
    assert np.mean(clean_scores > default_pipeline.threshold) <= 0.1
    for kind in ("fog", "noise", "vflip"):
        scores = _scores(default_pipeline, anomalies.perturb(kind, clean[::2], seed=11))
        assert auroc(clean_scores, scores) >= 0.93, kind  # measured: fog 0.965, noise 0.950, vflip 0.979
        assert np.mean(scores > default_pipeline.threshold) >= 0.8, kind


# -- the drive plan and the timeline ----------------------------------------------------------------------

def test_drive_spec_gives_the_first_frame_and_at_most_the_demos_frame_count(tmp_path):
    assert drive_spec(DemoConfig(out=tmp_path)) == (DEMO_STREET, DEMO_FIRST, 200)
    assert drive_spec(DemoConfig(out=tmp_path, quick=True)) == (DEMO_STREET, DEMO_FIRST, QUICK_FRAMES)
    assert drive_spec(DemoConfig(out=tmp_path, data="synthetic:3:300", frames="20:")) == ("synthetic:3:300", 20, 200)
    assert drive_spec(DemoConfig(out=tmp_path, data="synthetic:3:300", frames="250:")) == ("synthetic:3:300", 250, 50)


def test_plan_spreads_segments_with_clean_frames_before_between_and_after():
    assert plan_segments(0, 200, ("fog", "noise", "vflip", "pgd")) == [
        "fog:24-44", "noise:68-88", "vflip:112-132", "pgd:156-176"]
    assert plan_segments(150, 48, ("fog", "pgd")) == ["fog:163-167", "pgd:180-184"]
    with pytest.raises(DaainError, match="48 frames for 9 anomaly segments"):
        plan_segments(0, 48, ("fog",) * 9)


def _labels():
    epoch, rate = 10**18, 10.0
    segments = tuple(Segment(kind, start, end, epoch + stamp_at(start, rate), epoch + stamp_at(end, rate))
                     for kind, start, end in (("fog", 3, 5), ("vflip", 7, 9)))
    return BagLabels(topic="/cam", rate_hz=rate, epoch_ns=epoch, first_frame=1, frame_count=9, segments=segments)


def test_timeline_counts_judged_flagged_and_first_flag_per_part():
    labels = _labels()
    assert drive_parts(labels) == [(None, 1, 3), ("fog", 3, 5), (None, 5, 7), ("vflip", 7, 9), (None, 9, 10)]
    flags = {1: False, 2: True, 4: True, 5: False, 6: False, 7: False, 8: False, 9: False}  # frame 3 not judged
    verdicts = {labels.epoch_ns + stamp_at(i, 10.0): (Verdict(flag, ERROR if flag else OK, "", float(i)), 50.0 + i)
                for i, flag in flags.items()}
    parts, result = summarize_parts(labels, verdicts)
    assert [(p["kind"], p["judged"], p["flagged"]) for p in parts] == [
        ("clean", 2, 1), ("fog", 1, 1), ("clean", 2, 0), ("vflip", 2, 0), ("clean", 1, 0)]
    assert parts[1]["first_flag_frame"] == 4 and parts[1]["first_flag_s"] == pytest.approx(0.1)
    assert parts[3]["first_flag_frame"] is None
    assert result == dict(segments=2, segments_flagged=1, clean_judged=5, clean_flagged=1, false_positive_rate=0.2)


# -- process handling --------------------------------------------------------------------------------------

def test_ros_environment_isolates_the_demo():
    env = ros_environment(Path("/x/out"), {"PATH": "/bin"})
    assert 150 <= int(env["ROS_DOMAIN_ID"]) <= 230 and env["ROS_LOG_DIR"] == "/x/out/ros_log"
    assert ros_environment(Path("/x"), {"ROS_DOMAIN_ID": "42"})["ROS_DOMAIN_ID"] == "42"


def test_children_are_stopped_even_when_the_demo_fails(tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    sleeps = [sys.executable, "-c", "import time; time.sleep(600)"]
    fails = [sys.executable, "-c", "import sys; print('node failed'); sys.exit(3)"]
    with pytest.raises(DaainError, match="exited with code 3 before the drive was played: node failed"):
        with ChildProcess(sleeps, tmp_path / "a.log", env) as waiting, \
                ChildProcess(fails, tmp_path / "b.log", env) as node:
            _watch(waiting, {"detector_node": node}, time.monotonic() + 60)
    assert waiting.process.returncode is not None and node.process.returncode == 3


def test_a_child_that_ignores_sigint_is_killed_and_its_log_starts_with_its_command(tmp_path):
    code = ("import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(600)")
    child = ChildProcess([sys.executable, "-c", code], tmp_path / "child.log")
    deadline = time.monotonic() + 60
    while child.log_tail() != "ready" and time.monotonic() < deadline:  # SIGINT is ignored from here on
        time.sleep(0.01)
    assert child.stop(timeout=0.5) == -signal.SIGKILL
    assert child.log_tail(2) == f"{sys.executable} -c {code} | ready"


def test_a_model_without_its_detector_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["demo", "--model", str(default_model_path()), "--out", str(tmp_path)]) == 2
    assert "without --detector" in capsys.readouterr().err


def test_a_detector_for_other_weights_is_refused_before_anything_runs(tmp_path, capsys):
    from daain_ros.segmentation.espnet import ESPNet, save_espnet
    other = tmp_path / "other.safetensors"
    save_espnet(ESPNet(p=1, q=2), other, 1, 2)
    assert main(["demo", "--model", str(other), "--detector", str(default_detector_path()),
                 "--out", str(tmp_path / "demo")]) == 2
    assert "fitted for segmentation weights" in capsys.readouterr().err
    assert not (tmp_path / "demo" / "drive").exists()


# -- end to end --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_quick_demo_flags_every_segment_end_to_end(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([DAAIN, "demo", "--quick", "--device", "cpu", "--out", str(out)], capture_output=True,
                          text=True, timeout=240)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    flagged, injected, fpr = FINAL_LINE.match(lines[-1]).groups()
    assert int(flagged) == int(injected) == 4 and float(fpr) <= 0.1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["judged"] >= 0.8 * summary["frames"] and summary["recorded"]["/daain/segmentation"] > 0
    assert {p["kind"] for p in summary["parts"]} == {"clean", "fog", "noise", "vflip", "pgd"}
    assert any(line.startswith(f"demo: report {out / 'report.md'}") for line in lines)
    for name in ("scores.png", "overlay.png", "report.md", "drive/labels.json", "recorded/metadata.yaml"):
        assert (out / name).is_file(), name
    assert list((out / "ros_log").iterdir()), "the children's ROS logs go to OUT/ros_log"
