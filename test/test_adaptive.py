# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Adaptive attackers (issue 16) on the packaged default model at 128x64 with tiny detectors.

Each attacker lowers the score it targets, stays within its budget after rounding and is seeded; several
detectors share one forward; ``daain evaluate --surrogate`` writes the ``adaptive`` rows.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from daain_ros.cli.main import main
from daain_ros.demo.default_assets import default_model_path
from daain_ros.detector.artifact import save_detector
from daain_ros.detector.fit import FitConfig, fit_detector
from daain_ros.detector.flow import FlowConfig
from daain_ros.detector.monitor import ActivationMonitor
from daain_ros.errors import DaainError
from daain_ros.evaluation.adaptive import AdaptiveConfig, adaptive_attack
from daain_ros.evaluation.adaptive_critics import DetectorCritic, merge_keys
from daain_ros.evaluation.attacks import network_input, pixel_batch
from daain_ros.evaluation.key_agnostic import LayerStatistics, TypicalityCritic
from daain_ros.evaluation.protocol import at_network_size, within_budget
from daain_ros.pipeline import Pipeline

SIZE = (128, 64)
EPS = 4 / 255
CONFIG = AdaptiveConfig(steps=8, restarts=2)
KEY_SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def detectors(default_espnet, small_fit_frames):
    """Three detectors of one recipe, each with its own key: the real one and two surrogates."""
    config = FitConfig(size=SIZE, target_dims=150, augment_copies=1, calibration_folds=0,
                       flow=FlowConfig(epochs=2, blocks=2))
    return [fit_detector(default_espnet, small_fit_frames, replace(config, key_seed=seed), progress=False)
            for seed in KEY_SEEDS]


@pytest.fixture(scope="module")
def critics(default_espnet, detectors, small_fit_frames):
    return {"white-box": DetectorCritic(default_espnet, detectors[:1]),
            "surrogate-eot": DetectorCritic(default_espnet, detectors[1:]),
            "key-agnostic": TypicalityCritic(default_espnet,
                                             LayerStatistics.fit(default_espnet, small_fit_frames, SIZE),
                                             small_fit_frames)}


def _critic_view(critic, images):
    """The critic's scores (N x K) of uint8 images at network size."""
    with torch.no_grad():
        return critic(network_input(pixel_batch(images, "cpu") / 255, SIZE))[1]


def test_one_forward_scores_every_detector_as_its_own_monitor_does(default_espnet, detectors, small_held_out):
    x = network_input(pixel_batch(small_held_out, "cpu") / 255, SIZE)
    with torch.no_grad():
        _, scores = DetectorCritic(default_espnet, detectors)(x)
        for column, detector in enumerate(detectors):
            own = detector(ActivationMonitor(default_espnet, detector.key)(x)[1])
            torch.testing.assert_close(scores[:, column], own, rtol=1e-6, atol=1e-6)


def test_keys_of_other_sizes_do_not_merge(default_espnet, detectors, small_frames):
    other = fit_detector(default_espnet, small_frames("synthetic:3:8")[:8],
                         FitConfig(size=(64, 32), target_dims=50, augment_copies=0, calibration_folds=0, key_seed=4,
                                   flow=FlowConfig(epochs=1, blocks=1)), progress=False)
    with pytest.raises(DaainError, match="expected keys of one model at one size"):
        merge_keys([detectors[0].key, other.key])


@pytest.mark.parametrize("attacker", ["white-box", "surrogate-eot", "key-agnostic"])
def test_each_attacker_lowers_the_score_it_targets(critics, default_espnet, small_held_out, attacker):
    critic = critics[attacker]
    limits = critic.limits(_critic_view(critic, small_held_out))
    adaptive = adaptive_attack(default_espnet, critic, small_held_out, EPS, CONFIG, seed=0)
    damage_only = adaptive_attack(default_espnet, critic, small_held_out, EPS, replace(CONFIG, weight=0.0), seed=0)
    excess = (_critic_view(critic, adaptive.images) - limits).amax(1)
    assert (excess < (_critic_view(critic, damage_only.images) - limits).amax(1)).all()
    assert 1 <= adaptive.steps.min() and adaptive.steps.max() <= CONFIG.steps * CONFIG.restarts


@pytest.mark.parametrize("eps, pixels", [(2 / 255, 2), (8.5 / 255, 8)])
def test_attacks_stay_within_the_budget_after_rounding_and_are_seeded(critics, default_espnet, small_held_out, eps,
                                                                      pixels):
    critic = critics["surrogate-eot"]
    first, again, other = (adaptive_attack(default_espnet, critic, small_held_out, eps, CONFIG, seed=s).images
                           for s in (5, 5, 6))
    for clean, image, repeat, reseeded in zip(small_held_out, first, again, other):
        change = np.abs(image.astype(int) - clean)
        assert image.dtype == np.uint8 and change.max() == pixels
        assert np.array_equal(image, repeat) and not np.array_equal(image, reseeded)


def test_daain_evaluate_adds_the_adaptive_rows(tmp_path, default_espnet, detectors, small_frames):
    paths = [str(save_detector(d, tmp_path / f"detector{i}", default_espnet)) for i, d in enumerate(detectors)]
    out = tmp_path / "evaluate"
    assert main(["evaluate", "--detector", paths[0], "--model", str(default_model_path()), "--data",
                 "synthetic:9:4", "--fit-data", "synthetic:3:16", "--fit-stride", "2", "--kinds", "vflip",
                 "--mc-passes", "0", "--surrogate", paths[1], "--surrogate", paths[2], "--adaptive-steps", "2",
                 "--adaptive-restarts", "1", "--adaptive-every", "2", "--adaptive-eps", "4,8", "--device", "cpu",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["adaptive"]
    attackers = ["white-box", "surrogate", "surrogate-eot", "key-agnostic"]
    assert [(r["attacker"], round(r["eps"] * 255)) for r in rows] == [(a, e) for a in attackers for e in (4, 8)]
    threshold = results["threshold"]
    for row in rows:
        assert {"attacker", "eps", "frames", "success_rate", "flag_rate", "pixel_agreement", "steps"} <= set(row)
        assert row["frames"] == 2 and row["steps"] == 2 and row["keys"] == {"surrogate-eot": 2, "key-agnostic": 0}.get(
            row["attacker"], 1)
        scores, agreements = np.array(row["scores"]), np.array(row["agreements"])
        assert row["flag_rate"] == np.mean(scores > threshold)
        assert row["successes"] == ((agreements <= 0.5) & (scores <= threshold)).tolist()
        assert row["success_rate_at_budget"] == np.mean(row["successes"])
        assert row["pixel_agreement"] == pytest.approx(agreements.mean())
    # the rows' scores and agreements are the real detector's on the attacker's images: attacked again here
    pipeline = Pipeline.load(default_model_path(), paths[0], "cpu")
    frames = at_network_size(small_frames("synthetic:9:4")[::2], pipeline.size)
    attacked = adaptive_attack(pipeline.model, DetectorCritic(pipeline.model, [pipeline.detector]), frames, 4 / 255,
                               AdaptiveConfig(steps=2, restarts=1), seed=0).images
    judged, clean = pipeline.process(attacked), pipeline.process(frames)
    np.testing.assert_allclose([r.score for r in judged], rows[0]["scores"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose([(r.labels == c.labels).mean() for r, c in zip(judged, clean)], rows[0]["agreements"],
                               atol=1e-3)
    for small, large in zip(rows[::2], rows[1::2]):  # 4/255, then 8/255, per attacker
        assert large["success_rate"] == np.mean(np.array(small["successes"]) | np.array(large["successes"]))
    report = (out / "report.md").read_text()
    assert "## Adaptive attackers: what the key buys" in report and "| surrogate-eot | 8/255 | 2 |" in report


def test_success_within_a_budget_counts_every_smaller_budget_s_successes():
    rows = [{"eps": 8 / 255, "successes": [False, True, False]}, {"eps": 2 / 255, "successes": [True, False, False]},
            {"eps": 4 / 255, "successes": [False, False, False]}]
    assert [(round(r["eps"] * 255), r["success_rate"]) for r in within_budget(rows)] == [
        (8, 2 / 3), (2, 1 / 3), (4, 1 / 3)]


def test_daain_evaluate_refuses_bad_adaptive_budgets(tmp_path, default_espnet, detectors, capsys):
    path = str(save_detector(detectors[0], tmp_path / "detector", default_espnet))
    assert main(["evaluate", "--detector", path, "--model", str(default_model_path()), "--data", "synthetic:9:2",
                 "--surrogate", path, "--adaptive-eps", "4,x", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "--adaptive-eps '4,x'" in capsys.readouterr().err
