# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain evaluate`` end to end on a few real frames: every file, every contract key, sane numbers."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_evaluate_writes_report_results_and_plots(fitted_detector, espnet_dir, footage_dir, tmp_path):
    video = footage_dir / "solidWhiteRight.mp4"
    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "daain_ros.cli.main", "evaluate", "--detector", str(fitted_detector),
           "--model", str(espnet_dir / "espnet_p_2_q_8.pth"), "--data", str(video), "--frames", "212:220",
           "--fit-data", str(video), "--fit-frames", "0:150", "--fit-stride", "50", "--kinds", "fgsm,vflip",
           "--mc-passes", "1", "--attack-steps", "2", "--domain", str(footage_dir / "other"), "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    results = json.loads((out / "results.json").read_text())
    methods = {"daain", "msp", "max_logit", "entropy", "mc_dropout", "mahalanobis"}
    assert {r["method"] for r in results["rows"]} == methods
    for row in results["rows"]:
        assert {"kind", "method", "auroc", "aupr", "fpr95"} <= set(row)
        assert ("eps" in row) == (row["kind"] == "fgsm") and ("severity" in row) == (row["kind"] == "vflip")
        assert ("pixel_agreement" in row) == (row["kind"] == "fgsm")
    assert sorted({r["eps"] for r in results["rows"] if "eps" in r}) == pytest.approx([2 / 255, 4 / 255, 8 / 255])
    vflip = next(r for r in results["rows"] if r["kind"] == "vflip" and r["method"] == "daain")
    assert vflip["auroc"] > 0.9
    fgsm = next(r for r in results["rows"] if r["kind"] == "fgsm" and r["method"] == "daain")
    assert fgsm["pixel_agreement"] < 0.9
    assert results["domain"]["other"]["frames"] == 3
    report = (out / "report.md").read_text()
    assert "| vflip | severity 3 |" in report and "## Other cameras and conditions" in report
    for name in ("roc.png", "histograms.png", "domain.png"):
        assert (out / name).stat().st_size > 1000
