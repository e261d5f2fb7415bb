# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Threshold calibration: out-of-fold scores of every fit frame, from detectors that never saw that frame."""

import json

import numpy as np
import pytest
import torch

from daain_ros.cli.main import main
from daain_ros.demo.default_assets import default_model_path
from daain_ros.detector.calibration import calibrate, cross_fitted_scores
from daain_ros.detector.fit import FitConfig, fit_detector
from daain_ros.detector.flow import FlowConfig
from daain_ros.detector.sampling_key import LayerShape, SamplingKey
from daain_ros.errors import DaainError
from daain_ros.io.sources import open_source
from daain_ros.segmentation.espnet import load_espnet

CONFIG = FitConfig(augment_copies=1, calibration_folds=3, flow=FlowConfig(epochs=3, blocks=2))


def _key(dims=64):
    return SamplingKey.generate([LayerShape("conv", 8, 16, 32)], (32, 16), 0, target_dims=dims)


def test_each_stretch_is_scored_by_a_detector_trained_without_it():
    key, frames = _key(), 30
    generator = torch.Generator().manual_seed(0)
    acts = torch.randn(frames * 2, key.dims, generator=generator)  # each frame, then its jittered copy
    acts[:20] += 6.0  # the first stretch (frames 0-9, rows 0-19) lies far from the others
    scores = cross_fitted_scores(key, CONFIG, acts, frames, epochs=3, progress=False)
    assert scores.shape == (frames,) and np.isfinite(scores).all()
    # trained on frames 10-29 only, the first stretch's detector finds frames 0-9 far out (a detector that
    # had seen them would standardise the shift away: every frame within about 1.3 of the mean)
    assert scores[:10].min() > 2 * scores[10:].max()
    assert np.array_equal(scores, cross_fitted_scores(key, CONFIG, acts, frames, epochs=3, progress=False))


def test_calibration_takes_the_target_quantile_of_the_scores():
    scores = np.arange(200, dtype=float)
    threshold, figures = calibrate(scores, 0.01)
    assert threshold == 198.0 and figures["flag_rate"] == pytest.approx(0.005)
    assert figures["frames"] == 200 and figures["target_fpr"] == 0.01


@pytest.fixture(scope="module")
def default_model():
    return load_espnet(default_model_path(), "cpu")


@pytest.mark.parametrize("folds, frames", [(3, 20), (0, 4)])
def test_fit_calibrates_on_all_fit_frames_out_of_fold_or_on_the_validation_frames(default_model, folds, frames):
    images = [f.image for f in open_source("synthetic:3:20")]
    config = FitConfig(target_dims=200, augment_copies=1, calibration_folds=folds, key_seed=1,
                       flow=FlowConfig(epochs=2, blocks=2))
    detector = fit_detector(default_model, images, config, progress=False)
    calibration = detector.metadata["calibration"]
    assert calibration["frames"] == frames and calibration["threshold"] == float(detector.threshold)
    assert (f"{folds} folds" in calibration["method"]) == (folds >= 2)
    assert detector.metadata["fit"]["calibration_folds"] == folds


def test_daain_fit_takes_the_number_of_calibration_folds(tmp_path):
    """Four folds and five calibrate on the same 20 frames with differently trained flows: other thresholds."""
    calibrations = {}
    for folds in (4, 5):
        out = tmp_path / f"detector{folds}"
        assert main(["fit", "--model", str(default_model_path()), "--data", "synthetic:3:20", "--dims", "200",
                     "--augment", "1", "--blocks", "2", "--epochs", "2", "--calibration-folds", str(folds),
                     "--key-seed", "1", "--device", "cpu", "--out", str(out)]) == 0
        calibrations[folds] = json.loads((out / "detector.json").read_text())["calibration"]
    assert all(c["frames"] == 20 for c in calibrations.values()) and "4 folds" in calibrations[4]["method"]
    assert calibrations[4]["threshold"] != calibrations[5]["threshold"]


def test_supervised_head_learns_generated_anomalies_and_survives_the_artifact(tmp_path, default_model):
    from daain_ros.detector.artifact import load_detector, save_detector
    from daain_ros.evaluation.anomalies import perturb
    from daain_ros.evaluation.metrics import auroc
    from daain_ros.pipeline import Pipeline

    frames = [f.image for f in open_source("synthetic:3:30")]
    config = FitConfig(target_dims=300, augment_copies=1, calibration_folds=3, key_seed=2, head="supervised",
                       anomaly_kinds=("noise", "vflip"), flow=FlowConfig(epochs=3, blocks=2))
    with pytest.raises(DaainError, match="anomaly generator"):
        fit_detector(default_model, frames, config, progress=False)
    detector = fit_detector(default_model, frames, config, progress=False, anomalies=perturb)
    loaded = load_detector(save_detector(detector, tmp_path / "det", default_model), default_model)
    assert loaded.metadata["fit"]["anomaly_kinds"] == ["noise", "vflip"] and loaded.head.kind == "supervised"
    pipeline = Pipeline(default_model, loaded)
    try:
        # the kind it learned, on new noise over the fit scenes (held-out scenes drift: see docs/how-it-works.md)
        clean = np.array([r.score for r in pipeline.process(frames[:30])])
        noisy = np.array([r.score for r in pipeline.process(perturb("noise", frames[:30], seed=5))])
        with torch.no_grad():
            assert torch.equal(loaded.head.weights, detector.head.weights) and loaded.head.weights.abs().sum() > 0
    finally:
        pipeline.close()
    assert auroc(clean, noisy) >= 0.9


@pytest.mark.parametrize("settings", [
    dict(target_fpr=1.5), dict(target_fpr=-0.1), dict(radius=0.0), dict(target_dims=0), dict(augment_copies=-1),
    dict(valid_fraction=1.0), dict(calibration_folds=-1), dict(batch_size=0), dict(flow=FlowConfig(epochs=0)),
    dict(flow=FlowConfig(blocks=0)), dict(flow=FlowConfig(hidden=0))], ids=str)
def test_fit_settings_no_fit_can_run_with_are_refused_when_made(settings):
    with pytest.raises(DaainError, match="fit setting .*: expected"):
        FitConfig(**settings)


def test_fewer_fit_frames_than_calibration_folds_are_refused_before_fitting(tmp_path, capsys):
    out = tmp_path / "detector"
    assert main(["fit", "--model", str(default_model_path()), "--data", "synthetic:3:4", "--out", str(out)]) == 2
    assert "4 fit frames for 5 calibration folds: expected at least 5" in capsys.readouterr().err
    assert not out.exists()


def test_fit_does_not_replace_a_detector_unless_told_to(tmp_path, capsys):
    out = tmp_path / "detector"
    argv = ["fit", "--model", str(default_model_path()), "--data", "synthetic:3:12", "--dims", "60", "--epochs", "1",
            "--augment", "0", "--calibration-folds", "0", "--key-seed", "1", "--out", str(out)]
    assert main(argv) == 0
    first = (out / "detector.safetensors").read_bytes()
    capsys.readouterr()
    assert main([*argv[:-4], "--key-seed", "2", "--out", str(out)]) == 2
    assert "holds a detector already" in capsys.readouterr().err
    assert (out / "detector.safetensors").read_bytes() == first  # the first key is kept
    assert main([*argv[:-4], "--key-seed", "2", "--out", str(out), "--overwrite"]) == 0
    assert (out / "detector.safetensors").read_bytes() != first
