# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain report``: result sections rendered from the producers' JSON, with their provenance; bad inputs."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from daain_ros.bench import report as bench_report
from daain_ros.cli.main import main
from daain_ros.demo import report as demo_report
from daain_ros.errors import ResultFileError
from daain_ros.evaluation.report import write_report
from daain_ros.provenance import command_line, git_commit, provenance
from daain_ros.results import assemble, load_result

ORIGIN = {"date": "2026-11-25T10:00:00+0000", "commit": "abc1234",
          "command": ["/venv/bin/daain", "evaluate", "--detector", "out/detector", "--out", "out/evaluate"],
          "machine": {"cpu": "AMD EPYC", "cpu_family": 23, "cpu_model": 1, "cpu_mhz": 1996, "cpu_count": 2,
                      "cpu_flags": {"avx2": True, "avx512f": False},
                      "memory_mb": 24064.0, "torch": "2.13.0+cpu", "flush_denormal": True,
                      "load_average": [0.12, 0.3, 0.25]}}
MACHINE_LINE = ("- machine: AMD EPYC (family 23 model 1, clock 2.0 GHz when recorded), 2 logical CPUs, "
                "flags avx2 no-avx512f, 23.5 GiB, torch 2.13.0+cpu, flush-to-zero on, "
                "load average 0.12 / 0.30 / 0.25 (1 / 5 / 15 min)")


def _row(kind, method, auroc, aupr, fpr95, **extra):
    return {"kind": kind, "method": method, "auroc": auroc, "aupr": aupr, "fpr95": fpr95, "frames": 77, **extra}


def evaluation(tmp_path):
    """An evaluate output folder written by the real writer, with known numbers."""
    rows = [_row("fog", "daain", 0.9661, 0.9287, 0.052, severity=3, flag_rate=0.883),
            _row("fog", "mahalanobis", 1.0, 1.0, 0.0, severity=3),
            _row("pgd", "daain", 1.0, 1.0, 0.0, eps=4 / 255, flag_rate=1.0, pixel_agreement=0.0271),
            _row("pgd", "mahalanobis", 0.5, 0.25, 1.0, eps=4 / 255)]
    results = {"rows": rows, "clean_frames": 77, "clean_flag_rate": 4 / 77,
               "adaptive": [{"attacker": "white-box", "eps": 4 / 255, "frames": 6, "success_rate": 5 / 6,
                             "success_rate_at_budget": 4 / 6,
                             "flag_rate": 1 / 6, "pixel_agreement": 0.2417, "steps": 100, "restarts": 2,
                             "steps_per_image": 14.5, "seconds_per_image": 4.46}]}
    rng = np.random.default_rng(0)
    scores = {m: rng.normal(size=8) for m in ("daain", "mahalanobis")}
    raw = {"clean": scores, "fog s3": {m: s + 2 for m, s in scores.items()}}
    out = tmp_path / "evaluate"
    write_report(out, results, raw, 1.5281, {"udacity_720p": np.array([1.9, 1.95, 2.0])}, {"seed": 0}, ORIGIN)
    return out


def test_an_evaluation_whose_scores_are_not_all_finite_counts_those_as_flagged_and_draws_them(tmp_path):
    """The head's +inf where it cannot judge (and a NaN) is flagged in the domain rows, and every figure is drawn."""
    results = {"rows": [], "clean_frames": 3, "clean_flag_rate": 0.0}
    raw = {"clean": {"daain": np.array([1.2, 1.3, 1.4])}, "noise s5": {"daain": np.array([1.6, np.inf, np.nan])}}
    out = tmp_path / "evaluate"
    write_report(out, results, raw, 1.5, {"other": np.array([1.4, np.inf, np.nan, 1.45])}, None, ORIGIN)
    assert json.loads((out / "results.json").read_text())["domain"]["other"]["flag_rate"] == 0.5
    for name in ("roc.png", "histograms.png", "domain.png", "report.md"):
        assert (out / name).stat().st_size > 0, name


def case(value):
    return {"512x256": {"batch1": {"cpu": value}}}


def bench_result():
    leaf = {"median_ms": 58.91, "p90_ms": 62.04, "peak_mb": 383.2}
    daain = {"median_ms": 63.42, "p90_ms": 70.06, "peak_mb": 414.4, "overhead": 63.42 / 58.91}
    reference = {"median_ms": 4889.0, "p90_ms": 5001.0, "peak_mb": 5998.0, "extra_peak_vs_daain": 179.1,
                 "frame_extra_vs_daain": 310.5}
    return {"provenance": {**ORIGIN, "command": ["/venv/bin/daain", "bench", "--out", "out/bench.json"]},
            "machine": {"load_average_end": [1.5, 0.75, 0.5]},
            "settings": {"threads": 1, "iterations": 30, "warmup": 5, "quick": False, "model": "p2q8.pth",
                         "frames": "drive", "detectors": {"512x256": "fresh key"}},
            "espnet": case(leaf), "daain": case(daain), "reference": case(reference),
            "overhead": {**case(63.42 / 58.91), "headline": {"ratio": 63.42 / 58.91, "at": "512x256 batch1 cpu"}},
            "backends": case({"espnet": {"median_ms": 58.91, "p90_ms": 62.04},
                              "gathers": {"median_ms": 60.44, "p90_ms": 63.0},
                              "graph": {"median_ms": 63.42, "p90_ms": 70.06},
                              "espnet_onnxruntime": {"median_ms": 57.0, "p90_ms": 58.0},
                              "onnxruntime": {"median_ms": 58.0, "p90_ms": 59.0},
                              "espnet_compiled": {"median_ms": 48.0, "p90_ms": 49.0},
                              "graph_compiled": {"median_ms": 50.0, "p90_ms": 51.0},
                              "overhead": {"gathers": 60.44 / 58.91, "graph": 63.42 / 58.91,
                                           "onnxruntime": 58.0 / 57.0, "onnxruntime_vs_torch_espnet": 58.0 / 58.91,
                                           "graph_compiled": 50.0 / 48.0,
                                           "graph_compiled_vs_torch_espnet": 50.0 / 58.91},
                              "overhead_ci95": {"gathers": [1.0114, 1.0402],
                                                "onnxruntime_vs_torch_espnet": [0.97, 1.0],
                                                "graph_compiled_vs_torch_espnet": [0.84, 0.86]}}),
            "node": {"size": "512x256", "median_ms": 57.94, "p90_ms": 61.2, "node_internal_median_ms": 52.1,
                     "max_rate_hz": 16, "at_30hz": {"processed": 172, "sent": 300, "dropped": 128,
                                                    "latency_first_half_ms": 76.9, "latency_second_half_ms": 77.0,
                                                    "rss_start_mb": 481.2, "rss_end_mb": 481.4},
                     "backend": "auto", "runs_on": "onnxruntime", "workers": 0, "threads": 0, "cpus": 2,
                     "espnet_alone": {"backend": "onnxruntime", "workers": 2, "threads": 0, "frames": 175,
                                      "seconds": 10.0, "frames_per_s": 17.5},
                     "contention": {"competing_processes": 1, "cpus": [0, 1], "omp_wait_policy": "PASSIVE",
                                    "settings": [contention_row(None, 2, 18, 12), contention_row(2, 1, 30, 16),
                                                 contention_row(2, 1, 25, 15, "torch", "torch-compile")]}},
            "fit": {"seconds_per_100_frames": 63.04, "frames": 100, "epochs_run": 5, "peak_mb": 702.0}}


def contention_row(workers, threads, alone_hz, contended_hz, backend="onnxruntime", compile=None):  # noqa: A002
    """A row of the node's contention runs; ``workers`` None: an older result, which had one worker.

    ``compile`` None: an older result, which had none (the node's default).
    """
    runs = {"idle": {"max_rate_hz": alone_hz, "median_ms": 40.0},
            "contended": {"max_rate_hz": contended_hz, "median_ms": 50.0}}
    return {"backend": backend, **({"workers": workers} if workers else {}), "threads": threads, **runs,
            **({"compile": compile} if compile else {}), "ratio": contended_hz / alone_hz}


def demo_summary():
    parts = [dict(kind="clean", start=200, end=224, frames=24, judged=24, flagged=1, flagged_frames=[210],
                  start_s=0.0, end_s=1.6, first_flag_frame=None, first_flag_s=None, latency_ms_median=47.4),
             dict(kind="fog", start=224, end=244, frames=20, judged=20, flagged=18, flagged_frames=[224],
                  start_s=1.6, end_s=2.93, first_flag_frame=224, first_flag_s=0.0, latency_ms_median=48.2)]
    return {"provenance": {**ORIGIN, "command": ["/venv/bin/daain", "demo", "--out", "out/demo"]},
            "data": "synthetic:7:400", "frames": 44, "rate_hz": 8.0, "model": "espnet_default.safetensors",
            "detector": "detector", "threshold": 1.2679, "judged": 44, "parts": parts, "segments": 1,
            "segments_flagged": 1, "clean_judged": 24, "clean_flagged": 1, "false_positive_rate": 1 / 24,
            "metrics": {"fog": {"clean": 24, "anomalous": 20, "auroc": 0.9531}}}


@pytest.fixture
def inputs(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(bench_result()))
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "summary.json").write_text(json.dumps(demo_summary()))
    (demo / "scores.png").write_bytes(b"png")
    return evaluation(tmp_path), bench, demo


def test_commit_is_marked_dirty_when_tracked_files_differ_from_it(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)
    assert git_commit(tmp_path) is None  # no checkout
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "a")
    commit = git_commit(tmp_path)
    assert len(commit) >= 7 and "dirty" not in commit
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert git_commit(tmp_path) == commit
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"{commit}-dirty"


def test_provenance_records_the_command_and_the_machine():
    record = provenance(["/venv/bin/daain", "bench", "--out", "a b.json"])
    assert record["command"] == ["/venv/bin/daain", "bench", "--out", "a b.json"]
    assert command_line(record["command"]) == "daain bench --out 'a b.json'"
    machine = record["machine"]
    assert machine["cpu_count"] >= 1 and machine["torch"] and isinstance(machine["flush_denormal"], bool)
    assert len(record["date"]) >= 19 and len(machine["load_average"]) == 3
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "cpu family" in cpuinfo.read_text():
        family = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("cpu family"))
        assert machine["cpu_family"] == int(family.split(":")[1]) and machine["cpu_model"] >= 0


def test_every_section_has_its_numbers_and_provenance(inputs, tmp_path):
    out = assemble(tmp_path / "docs" / "results.md", [str(path) for path in inputs],
                   ["/venv/bin/daain", "report", "docs/results.md"])
    text = out.read_text()
    assert "Generated by `daain report docs/results.md`" in text
    for line in ("- date: 2026-11-25T10:00:00+0000", "- commit: abc1234", MACHINE_LINE,
                 "- command: `daain evaluate --detector out/detector --out out/evaluate`",
                 "- command: `daain bench --out out/bench.json`", "- command: `daain demo --out out/demo`",
                 "- load average at the end: 1.50 / 0.75 / 0.50"):
        assert line in text.splitlines(), line
    # evaluate: AUROC / AUPR / FPR95 to 3, 3 and 2 decimals, flag rates in whole percent
    assert "| fog | severity 3 | 0.966 / 0.929 / 0.05 | 1.000 / 1.000 / 0.00 | 88% |  |" in text
    assert "| pgd | eps 4/255 | 1.000 / 1.000 / 0.00 | 0.500 / 0.250 / 1.00 | 100% | 0.027 |" in text
    assert "flagged at the calibrated threshold (1.5281): 5.2%." in text
    assert "| white-box | 4/255 | 6 | 83% | 67% | 17% | 0.242 | 100 x 2 | 14 | 4.5 |" in text
    assert "| udacity_720p | 3 | 100% | 1.950 | 1.990 |" in text
    # bench: ms to one decimal, MB whole, ratios to three decimals
    assert "| daain | 512x256 | 1 | cpu | 63.4 | 70.1 | 414 | 1.077 |" in text
    assert "**Overhead DAAIN / ESPNet at 512x256 batch1 cpu: 1.077**" in text
    assert "| 512x256 | 1 | cpu | 5615 | 31 | 179x | 310x |" in text
    # backends: each variant over ESPNet alone on its backend, the ESPNet rows without a ratio, the 95 % interval
    # where the result has one
    assert "| 512x256 batch1 cpu | espnet | 58.9 | 62.0 | - | - |" in text
    assert "| 512x256 batch1 cpu | gathers | 60.4 | 63.0 | 1.026 | [1.011, 1.040] |" in text
    assert "| 512x256 batch1 cpu | onnxruntime | 58.0 | 59.0 | 1.018 | - |" in text
    assert ("| 512x256 batch1 cpu | onnxruntime monitor / eager torch ESPNet alone | | | 0.985 | [0.970, 1.000] |"
            in text)
    assert "| 512x256 batch1 cpu | graph_compiled | 50.0 | 51.0 | 1.042 | - |" in text
    assert ("| 512x256 batch1 cpu | torch.compile monitor / eager torch ESPNet alone | | | 0.849 | [0.840, 0.860] |"
            in text)
    assert "publish-to-flag latency 57.9 ms median, 61.2 ms p90" in text and "172 of 300 frames judged" in text
    assert "The node (backend auto = onnxruntime, its default workers, one thread per core on 2 cores)" in text
    assert ("ESPNet alone on the node's backend (onnxruntime), workers (2) and threads, in the benchmark's process "
            "with no monitor and no ROS: 17.5 frames/s, about the most a node so set could judge on this machine in "
            "this run; the node's top rate is 0.91 of it (the sweep's next rate dropped frames).") in text
    assert "| onnxruntime | 1 | 2 | 18 | 12 | 0.67 | 40.0 | 50.0 |" in text  # an older result: one worker
    assert "| onnxruntime | 2 | 1 | 30 | 16 | 0.53 | 40.0 | 50.0 |" in text
    assert "| torch (torch-compile) | 2 | 1 | 25 | 15 | 0.60 | 40.0 | 50.0 |" in text
    assert "63.0 s per 100 frames (100 frames, 5 epochs, peak 702 MB)." in text
    # demo
    assert "**1/1 injected segments flagged, false-positive rate 0.04**" in text
    assert "| 1.60-2.93 | fog | 224-243 | 20 | 18 | +0.00 s (frame 224) | 48 ms |" in text
    assert "| fog | 24 | 20 | 0.953 |" in text


def test_figures_are_copied_beside_the_document(inputs, tmp_path):
    out = assemble(tmp_path / "docs" / "results.md", [str(path) for path in inputs])
    text = out.read_text()
    assert "![ROC curves](results/evaluate/roc.png)" in text
    assert "![Domain shift](results/evaluate/domain.png)" in text
    assert "![score against time](results/demo/scores.png)" in text
    assert (tmp_path / "docs" / "results" / "evaluate" / "roc.png").is_file()
    assert (tmp_path / "docs" / "results" / "demo" / "scores.png").read_bytes() == b"png"


def test_producer_report_and_section_share_the_rendering(inputs, tmp_path):
    """report.md (the producer's) and the assembled section carry the same table lines."""
    evaluate, bench, demo = inputs
    text = assemble(tmp_path / "results.md", [str(evaluate), str(bench), str(demo)]).read_text()
    for report in ((evaluate / "report.md").read_text(), demo_report.markdown(demo_summary())):
        table = [line for line in report.splitlines() if line.startswith("| ")]
        assert len(table) >= 4 and all(line in text.splitlines() for line in table)
        assert MACHINE_LINE in report.splitlines()
    assert bench_report.markdown(bench_result(), level=3) in text


def test_results_json_and_folder_are_the_same_input(inputs):
    evaluate, bench, demo = inputs
    assert load_result(evaluate).kind.name == load_result(evaluate / "results.json").kind.name == "evaluate"
    assert load_result(bench).kind.name == "bench" and load_result(demo).kind.name == "demo"
    assert load_result(evaluate).document["provenance"] == ORIGIN


@pytest.mark.parametrize("name, content", [("other.json", '{"frames": 3}'), ("broken.json", "{"),
                                           ("folder", None), ("missing.json", None)])
def test_an_unknown_input_is_one_error_line_and_exit_code_2(tmp_path, capsys, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    elif name == "folder":
        path.mkdir()
    out = tmp_path / "results.md"
    assert main(["report", str(out), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"daain report: error: {path}") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_an_incomplete_result_is_a_typed_error(tmp_path):
    broken = {**bench_result(), "node": {"median_ms": 1.0}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ResultFileError, match="incomplete bench result"):
        assemble(tmp_path / "results.md", [path])


def test_several_bench_runs_get_one_overview_table_in_their_order(tmp_path):
    """Two bench runs and an older one without backends: one row per timed case, the node on each run's first row.

    A CPU case names the CPU and a CUDA case the GPU, even in one run. The overview comes before the sections; a
    single bench run gets none (its section says it all).
    """
    cuda = bench_result()
    cuda["provenance"] = {**cuda["provenance"], "date": "2026-12-04T09:00:00+0000", "commit": "def5678",
                          "machine": {**ORIGIN["machine"], "cuda_device": "NVIDIA H200"}}
    cuda["settings"]["block"] = 10
    cuda["backends"]["1024x512"] = {"batch1": {"cuda": {"espnet": {"median_ms": 4.0, "p90_ms": 4.1},
                                                        "graph": {"median_ms": 4.6, "p90_ms": 4.7},
                                                        "overhead": {"graph": 4.6 / 4.0}, "overhead_ci95": {}}}}
    older = bench_result()
    del older["backends"], older["provenance"], older["node"]["espnet_alone"]
    older["machine"] = {"cpu": "Intel(R) Xeon(R) Processor", "started": "2026-11-30T08:00:00+0000",
                        "commit": "0123abc"}
    paths = []
    for name, result in (("cpu.json", bench_result()), ("cuda.json", cuda), ("older.json", older)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(result))
    text = assemble(tmp_path / "results.md", [str(path) for path in paths]).read_text()
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    epyc = "AMD EPYC (family 23 model 1, clock 2.0 GHz when recorded)"
    assert rows == [
        f"| `cpu.json` | 2026-11-25 | abc1234 | {epyc} | batch by batch | 512x256 batch1 cpu | "
        "1.077 - | 0.985 [0.970, 1.000] | 0.849 [0.840, 0.860] | 16 Hz at 512x256 (17.5/s) | 172 of 300 |",
        f"| `cuda.json` | 2026-12-04 | def5678 | {epyc} | 10 batches at a time | 512x256 batch1 cpu | "
        "1.077 - | 0.985 [0.970, 1.000] | 0.849 [0.840, 0.860] | 16 Hz at 512x256 (17.5/s) | 172 of 300 |",
        "| `cuda.json` | 2026-12-04 | def5678 | NVIDIA H200 | 10 batches at a time | 1024x512 batch1 cuda | "
        "1.150 - | - | - | - | - |",
        "| `older.json` | 2026-11-30 | 0123abc | Intel(R) Xeon(R) Processor | batch by batch | no backend comparison | "
        "- | - | - | 16 Hz at 512x256 | 172 of 300 |"]
    assert lines.index("## Benchmark runs at a glance") < lines.index(rows[0]) < lines.index(
        "## Benchmark: what DAAIN costs on top of ESPNet (`daain bench`)")
    single = assemble(tmp_path / "one.md", [str(paths[0])]).read_text()
    assert "at a glance" not in single
