# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain fleet evaluate`` and ``daain fit --address`` on a real local Ray cluster of 2 CPUs.

The cluster is started by this module on free ports under its own temporary folder and stopped at its
end; every Ray process it started must be gone then. Bags come from ``daain bag from-images`` and
``from-video`` on held-out frames of the street the packaged default detector was fitted on.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from daain_ros.cli.main import main
from daain_ros.demo.default_assets import DEFAULT_DIR, default_model_path
from daain_ros.io.sources import open_source, parse_frames

ray = pytest.importorskip("ray", reason="ray is pinned in requirements-python.txt; install it to run these tests")

from daain_ros.fleet import criteria as fleet_criteria  # noqa: E402  (needs ray installed only for the skip)
from daain_ros.fleet.bags import bag_names, expand  # noqa: E402
from daain_ros.fleet.evaluate import evaluate_fleet  # noqa: E402
from daain_ros.fleet.pool import PoolWorker, WorkerPool, WorkerSpec  # noqa: E402

DETECTOR = DEFAULT_DIR / "detector"
STREET = "synthetic:7:400"  # the default detector was fitted on frames 0-199; these tests use 200 on
FOG = (8, 16)
TIMING_COLUMNS = ("latency_ms",)


def _ray_processes(folder):
    """Process ids whose command line names ``folder`` (the Ray processes of a cluster kept there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(folder).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # the process ended while it was read
                continue
    return found


def _gone(folder, patience_s=20.0):
    """Whether every process naming ``folder`` has ended, waiting for their exit up to ``patience_s``."""
    deadline = time.monotonic() + patience_s
    while _ray_processes(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _ray_processes(folder)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for this module (random free ports, its own short temporary folder)."""
    folder = Path(tempfile.mkdtemp(prefix="daain-ray-", dir="/tmp"))  # sockets need a short path
    sigterm = signal.getsignal(signal.SIGTERM)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(folder),
             logging_level="warning")
    try:
        yield folder
    finally:
        ray.shutdown()
        signal.signal(signal.SIGTERM, sigterm)
        left = _ray_processes(folder) if not _gone(folder) else []
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """clean_images (16 frames), clean_video (16), fog (24, fog on 8-16) and corrupt (a broken mcap)."""
    root = tmp_path_factory.mktemp("bags")
    frames = [f.image for f in open_source(STREET, parse_frames("200:240"))]
    (root / "images").mkdir()
    for number, image in enumerate(frames[:16]):
        cv2.imwrite(str(root / "images" / f"frame{number:03d}.png"), image)
    writer = cv2.VideoWriter(str(root / "drive.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (frames[0].shape[1], frames[0].shape[0]))
    for image in frames:
        writer.write(image)
    writer.release()
    assert main(["bag", "from-images", str(root / "images"), str(root / "clean_images")]) == 0
    assert main(["bag", "from-video", str(root / "drive.avi"), str(root / "clean_video"), "--frames", "24:40"]) == 0
    assert main(["bag", "from-video", str(root / "drive.avi"), str(root / "fog"), "--frames", "0:24",
                 "--inject", f"fog:{FOG[0]}-{FOG[1]}"]) == 0
    shutil.copytree(root / "clean_images", root / "corrupt")
    (storage,) = (root / "corrupt").glob("*.mcap")
    storage.write_bytes(storage.read_bytes()[:200] + bytes(storage.stat().st_size - 200))
    return {name: root / name for name in ("clean_images", "clean_video", "fog", "corrupt")}


@pytest.fixture(scope="module")
def fleet(cluster, bags, tmp_path_factory):
    """One fleet run over the four bags with 2 workers: (its document, its output folder)."""
    out = tmp_path_factory.mktemp("fleet")
    doc = evaluate_fleet([str(path) for path in bags.values()], detector=DETECTOR, model=default_model_path(),
                         out=out, workers=2, progress=False)
    return doc, out


def _rows(path):
    with open(path, newline="") as table:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(table)]


def test_each_bag_is_evaluated_as_daain_bag_evaluate_does(fleet, bags, tmp_path):
    doc, out = fleet
    for name in ("clean_images", "clean_video", "fog"):
        assert main(["bag", "evaluate", str(bags[name]), "--detector", str(DETECTOR), "--model",
                     str(default_model_path()), "--out", str(tmp_path / name)]) == 0
        header = next(csv.reader(open(tmp_path / name / "frames.csv")))
        assert [c for c in header if c not in TIMING_COLUMNS] == ["index", "stamp_ns", "time_s", "label", "score",
                                                                  "threshold", "flag", "debounced_flag", "error"]
        assert _rows(out / "bags" / name / "frames.csv") == _rows(tmp_path / name / "frames.csv"), name
        fleet_summary = json.loads((out / "bags" / name / "summary.json").read_text())
        alone = json.loads((tmp_path / name / "summary.json").read_text())
        for key in ("frames", "flagged", "debounced_flagged", "longest_flagged_run", "segments", "metrics", "topic"):
            assert fleet_summary.get(key) == alone.get(key), (name, key)
        assert {p.name for p in (out / "bags" / name).iterdir()} == {p.name for p in (tmp_path / name).iterdir()}
    assert doc["workers"]["count"] == 2 and len(doc["workers"]["started"]) == 2
    assert {w["threads"] for w in doc["workers"]["started"]} == {1}


def test_the_corrupt_bag_is_reported_and_the_run_goes_on(fleet, head_commit):
    doc, out = fleet
    rows = {row["name"]: row for row in doc["bags"]}
    assert [row["name"] for row in doc["bags"]] == ["clean_images", "clean_video", "fog", "corrupt"]
    corrupt = rows["corrupt"]
    assert (corrupt["status"], corrupt["verdict"]) == ("unreadable", "error")
    assert "cannot be opened as a rosbag2 bag" in corrupt["error"]
    assert all(rows[name]["status"] == "evaluated" and rows[name]["verdict"] == "pass"
               for name in ("clean_images", "clean_video", "fog"))
    assert doc["passed"] is False and doc["overall"]["counts"]["verdict"] == {"pass": 3, "fail": 0, "error": 1}
    fog = rows["fog"]
    assert (fog["kind"], fog["segments"], fog["segments_detected"]) == ("labelled", 1, 1)
    metrics = doc["overall"]["labelled"]["metrics"]["fog"]
    assert (metrics["clean"], metrics["anomalous"]) == (16, 8) and metrics["auroc"] > 0.9
    clean = doc["overall"]["clean"]
    assert (clean["bags"], clean["frames"]) == (2, 32)
    assert clean["flag_rate"] == pytest.approx((rows["clean_images"]["flagged"] + rows["clean_video"]["flagged"]) / 32)
    assert doc["overall"]["throughput"]["frames"] == 56 and doc["overall"]["throughput"]["frames_per_s"] > 0
    assert head_commit.startswith(doc["provenance"]["commit"].removesuffix("-dirty"))
    table = list(csv.DictReader(open(out / "fleet.csv", newline="")))
    assert [r["name"] for r in table] == ["clean_images", "clean_video", "fog", "corrupt"]
    assert "| corrupt | unreadable |" in (out / "fleet.md").read_text()
    assert (out / "fleet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_infinite_threshold_is_refused_before_any_work(bags, capsys, tmp_path):
    out = tmp_path / "fleet"
    assert main(["fleet", "evaluate", str(bags["clean_images"]), "--detector", str(DETECTOR), "--model",
                 str(default_model_path()), "--out", str(out), "--threshold", "inf"]) == 2
    assert "threshold inf: expected a finite score" in capsys.readouterr().err
    assert not out.exists()


def test_resume_does_no_work_the_second_time(fleet, bags, capsys, tmp_path):
    out = tmp_path / "fleet"
    shutil.copytree(fleet[1], out, copy_function=shutil.copy2)  # times kept; the other tests keep theirs
    good = [bags[name] for name in ("clean_images", "clean_video", "fog")]
    before = {p: p.stat().st_mtime_ns for bag in good for p in (out / "bags" / bag.name).rglob("*")}
    argv = ["fleet", "evaluate", *map(str, good), "--detector", str(DETECTOR), "--model", str(default_model_path()),
            "--out", str(out)]
    assert main(argv) == 2  # without --resume earlier outputs are refused
    assert "use --resume" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    doc = json.loads((out / "fleet.json").read_text())
    assert [row["status"] for row in doc["bags"]] == ["skipped"] * 3
    assert doc["workers"]["count"] == 0 and doc["workers"]["cluster"] is None
    assert doc["overall"]["throughput"]["frames"] == 0 and doc["passed"] is True
    assert {p: p.stat().st_mtime_ns for bag in good for p in (out / "bags" / bag.name).rglob("*")} == before
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["passed"] is True


def test_criteria_pass_the_clean_bag_and_fail_the_fog_bag_when_its_segment_is_missed(fleet, bags, tmp_path):
    doc, out = fleet
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text("clean:\n  max_flagged_percent: 10\n  max_run_s: 0.5\nlabelled:\n  detect_within_s: 0.5\n"
                        "bags:\n  - match: 'clean_v*'\n    clean: {max_flagged_percent: 0}\n")
    limits = fleet_criteria.read_criteria(criteria)
    fog_summary = json.loads((out / "bags" / "fog" / "summary.json").read_text())
    assert fleet_criteria.judge(fog_summary, limits.for_bag("fog", bags["fog"])[0]) == ("pass", [])
    assert limits.for_bag("clean_video", bags["clean_video"])[0].max_flagged_percent == 0
    assert limits.for_bag("clean_video", bags["clean_video"])[0].max_run_s == 0.5
    fog_scores = [float(r["score"]) for r in _rows(out / "bags" / "fog" / "frames.csv") if r["label"] == "fog"]
    clean_scores = [float(r["score"]) for r in _rows(out / "bags" / "clean_images" / "frames.csv")]
    raised = 1.5 * max(fog_scores + clean_scores)
    code = main(["fleet", "evaluate", str(bags["clean_images"]), str(bags["fog"]), "--detector", str(DETECTOR),
                 "--model", str(default_model_path()), "--out", str(tmp_path / "raised"), "--threshold", str(raised),
                 "--criteria", str(criteria), "--workers", "2"])
    assert code == 1
    doc = json.loads((tmp_path / "raised" / "fleet.json").read_text())
    rows = {row["name"]: row for row in doc["bags"]}
    assert rows["clean_images"]["verdict"] == "pass" and rows["clean_images"]["flagged"] == 0
    assert rows["fog"]["verdict"] == "fail" and rows["fog"]["reasons"] == [f"fog:{FOG[0]}-{FOG[1]} not detected"]
    assert doc["criteria"]["default"]["detect_within_s"] == 0.5 and doc["settings"]["threshold"] == raised


def test_daain_report_renders_the_fleet_run_as_fleet_md_does(fleet, tmp_path):
    doc, out = fleet
    document = tmp_path / "docs" / "results.md"
    assert main(["report", str(document), str(out)]) == 0
    text = document.read_text()
    row = next(line for line in (out / "fleet.md").read_text().splitlines() if line.startswith("| 4 |"))
    assert row in text and "| corrupt | unreadable |" in text
    assert (tmp_path / "docs" / "results" / "fleet" / "fleet.png").is_file()


def test_bag_names_and_patterns(tmp_path, bags):
    names = bag_names([Path("/a/day1/drive"), Path("/a/day2/drive"), Path("/b/other.mcap")])
    assert names == ["day1__drive", "day2__drive", "other"]
    found = expand([str(bags["clean_images"].parent / "clean_*"), str(bags["fog"])])
    assert [p.name for p in found] == ["clean_images", "clean_video", "fog"]
    with pytest.raises(Exception, match="matches no bag"):
        expand([str(tmp_path / "nothing_*")])


class Flaky(PoolWorker):
    """Dies on items named 'crash' every time, and on 'flaky' only the first time (a marker file remembers)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def work(self, item):
        marker = self.folder / f"{item}.tried"
        if item == "crash" or (item == "flaky" and not marker.exists()):
            marker.touch()
            os._exit(1)
        return item.upper()


def test_a_worker_that_dies_is_retried_once_then_its_item_fails(cluster, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's worker class, by value
    with WorkerPool(WorkerSpec(Flaky, (str(tmp_path),)), workers=2) as pool:
        outcomes = {o.item: o for o in pool.results(["crash", "flaky", "ok", "after"])}
    assert outcomes["crash"].failure.startswith("its worker died twice")
    assert (outcomes["flaky"].value, outcomes["flaky"].restarted) == ("FLAKY", True)
    assert (outcomes["ok"].value, outcomes["after"].value) == ("OK", "AFTER")


def test_parallel_fit_activations_equal_the_single_process_ones(cluster, bags):
    from daain_ros.detector.augment import augment
    from daain_ros.detector.daain import extract_activations
    from daain_ros.detector.fit import FitConfig, _split, fit_key
    from daain_ros.detector.monitor import ActivationMonitor
    from daain_ros.fleet.fit import activation_pool, parallel_activations
    from daain_ros.io.sources import every_kth
    from daain_ros.segmentation.espnet import load_espnet

    config = FitConfig(target_dims=300, augment_copies=1, key_seed=5)
    sources = [str(bags["clean_video"]), "synthetic:7:12"]
    model = load_espnet(default_model_path())
    key = fit_key(model, config)
    frames = [f.image for spec in sources for f in every_kth(open_source(spec), 2)]
    train_frames, valid_frames = _split(frames, config)
    monitor = ActivationMonitor(model, key)
    expected = [extract_activations(monitor, augment(part, 1, seed), key.size, config.batch_size, False)[0]
                for part, seed in ((train_frames, config.seed), (valid_frames, config.seed + 1))]
    with activation_pool(default_model_path(), key, config, workers=2) as pool:
        train, valid = parallel_activations(default_model_path(), key, sources, config, pool, every=2,
                                            progress=False)
    assert (len(train), len(valid)) == (2 * len(train_frames), 2 * len(valid_frames)) == (22, 6)
    assert torch.equal(train, expected[0]) and torch.equal(valid, expected[1])


def test_fit_with_address_local_gives_the_detector_of_a_single_process_fit(tmp_path):
    from daain_ros.detector.artifact import load_detector
    from daain_ros.detector.monitor import ActivationMonitor
    from daain_ros.pipeline import Pipeline
    from daain_ros.segmentation.preprocess import preprocess

    args = ["fit", "--model", str(default_model_path()), "--data", "synthetic:7:24", "--every", "2", "--dims", "200",
            "--augment", "1", "--epochs", "2", "--blocks", "2", "--calibration-folds", "0", "--key-seed", "3"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    ray_dir = Path(tempfile.mkdtemp(prefix="daain-ray-", dir="/tmp"))
    try:
        done = subprocess.run([sys.executable, "-m", "daain_ros.cli.main", *args, "--out", str(tmp_path / "ray"),
                               "--address", "local", "--workers", "2"], capture_output=True, text=True, timeout=240,
                              env={**os.environ, "RAY_TMPDIR": str(ray_dir)})
        assert done.returncode == 0, done.stderr[-3000:]
        assert _gone(ray_dir), f"Ray processes left behind: {_ray_processes(ray_dir)}"
    finally:
        shutil.rmtree(ray_dir, ignore_errors=True)
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["ray"]["workers"] == 2 and printed["train_frames"] == 10 and printed["valid_frames"] == 2
    pipeline = Pipeline.load(default_model_path(), tmp_path / "one", "cpu")
    parallel = load_detector(tmp_path / "ray", pipeline.model)
    assert torch.equal(torch.from_numpy(parallel.key.indices), torch.from_numpy(pipeline.detector.key.indices))
    held_out = [f.image for f in open_source(STREET, parse_frames("300:308"))]
    with torch.inference_mode():
        monitor = ActivationMonitor(pipeline.model, pipeline.detector.key)
        _, activations = monitor(preprocess(held_out, pipeline.size, pipeline.device))
        np.testing.assert_allclose(parallel(activations).numpy(), pipeline.detector(activations).numpy(),
                                   rtol=1e-4, atol=1e-4)
    assert float(parallel.threshold) == pytest.approx(float(pipeline.detector.threshold), rel=1e-4)


def test_the_sizing_note_in_the_docs_is_what_the_benchmark_json_renders(tmp_path, monkeypatch):
    from daain_ros.fleet.sizing import BEGIN, END, write_sizing

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    committed = (repo / "docs" / "fleet.md").read_text()
    copy = tmp_path / "fleet.md"
    copy.write_text(committed.replace(committed[committed.index(BEGIN):committed.index(END)], BEGIN + "\n"))
    write_sizing(Path("docs/fleet/bench.json"), copy)
    assert copy.read_text() == committed  # regenerate with `daain fleet sizing` (see docs/fleet.md), never by hand
    bench = json.loads((repo / "docs" / "fleet" / "bench.json").read_text())
    per_hour = 3600 * bench["per_frame"]["frames"] / bench["per_frame"]["evaluate_s"]
    assert f"**{per_hour:,.0f} frames per hour**" in committed
    assert bench["provenance"]["commit"] and bench["provenance"]["machine"]["cpu_count"] >= 1
