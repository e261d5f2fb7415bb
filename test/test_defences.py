# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The defence study (issue 16) on the packaged default model at 128x64.

The JPEG check and its adapted attacker, secret projections, and ``daain defences`` with its section in
``daain report``.
"""

import json

import numpy as np
import pytest
import torch

from daain_ros.cli.main import main
from daain_ros.demo.default_assets import default_model_path
from daain_ros.detector.artifact import save_detector
from daain_ros.detector.fit import FitConfig, fit_detector
from daain_ros.detector.flow import FlowConfig
from daain_ros.errors import DaainError
from daain_ros.evaluation.adaptive import AdaptiveConfig, adaptive_attack
from daain_ros.evaluation.adaptive_critics import COPIES
from daain_ros.evaluation.attacks import network_input, pixel_batch
from daain_ros.evaluation.corruptions import jpeg_round_trip
from daain_ros.evaluation.defences import _torch_seed, split_fit
from daain_ros.evaluation.projections import SecretProjections
from daain_ros.evaluation.squeezing import JpegConsistency, SqueezingCritic, all_offsets, compress
from daain_ros.evaluation.students import StudentCheck, train_student
from daain_ros.results import assemble

SIZE = (128, 64)
CONFIG = AdaptiveConfig(steps=8, restarts=1)


def test_the_grid_offset_leaves_the_rows_and_columns_before_it_as_they_were(small_held_out):
    image = small_held_out[0]
    assert np.array_equal(compress(image, 50), jpeg_round_trip(image, 50))
    shifted = compress(image, 50, (3, 5))
    assert np.array_equal(shifted[:5], image[:5]) and np.array_equal(shifted[:, :3], image[:, :3])
    assert np.array_equal(shifted[5:, 3:], jpeg_round_trip(image[5:, 3:], 50))
    assert not np.array_equal(shifted, compress(image, 50))
    with pytest.raises(DaainError, match=r"expected dx and dy in \[0, 8\)"):
        compress(image, 50, (8, 0))


def test_stronger_compression_changes_more_labels(default_espnet, small_held_out):
    kept = {quality: JpegConsistency(default_espnet, SIZE, quality)(small_held_out) for quality in (95, 5)}
    assert (kept[95] > kept[5]).all() and (kept[95] <= 1).all()


@pytest.mark.parametrize("draws", [None, 2])
def test_the_critic_sees_what_the_check_measures(default_espnet, typical, small_held_out, draws):
    critic = SqueezingCritic(typical, JpegConsistency(default_espnet, SIZE, 20), 0.9, draws)
    with torch.no_grad():
        _, scores = critic(network_input(pixel_batch(small_held_out, "cpu") / 255, SIZE))
    inner = len(typical.names)
    assert scores.shape == (len(small_held_out), inner + COPIES * (draws or 1))
    if draws is None:  # on the fixed grid, the column is the log of the share of labels the check sees change
        changed = 1 - JpegConsistency(default_espnet, SIZE, 20)(small_held_out)
        np.testing.assert_allclose(scores[:, inner].exp().numpy(), changed, atol=2e-3)
    limits = critic.limits(scores)
    # the check's limit: the log share of changed labels its threshold (agreement 0.9) allows, or the image's own
    # when higher; the inner critic's columns keep their own limits
    torch.testing.assert_close(limits[:, inner:], scores[:, inner:].clamp_min(float(np.log(1 - 0.9))))
    torch.testing.assert_close(limits[:, :inner], typical.limits(scores[:, :inner]))


@pytest.mark.parametrize("draws", [None, 2])
def test_the_adapted_attacker_keeps_more_labels_under_compression_and_is_seeded(default_espnet, typical, small_held_out,
                                                                                draws):
    check = JpegConsistency(default_espnet, SIZE, 20)
    offsets = [(0, 0)] if draws is None else all_offsets()

    def kept(images):
        return np.mean([check(images, [offset] * len(images)) for offset in offsets])

    adapted, again = (adaptive_attack(default_espnet, SqueezingCritic(typical, check, 0.99, draws, seed=3),
                                      small_held_out, 4 / 255, CONFIG, seed=0).images for _ in range(2))
    ignoring = adaptive_attack(default_espnet, typical, small_held_out, 4 / 255, CONFIG, seed=0).images
    assert kept(adapted) > kept(ignoring)
    assert all(np.array_equal(a, b) for a, b in zip(adapted, again))


def test_secret_projections_are_keyed_and_flag_what_is_far_from_clean(default_espnet, typical, small_frames,
                                                                      small_held_out):
    calibration = small_frames("synthetic:5:12")
    fitted = [SecretProjections.fit(default_espnet, typical.statistics, calibration, 8, seed) for seed in (1, 1, 2)]
    scores = [p.score(default_espnet, small_held_out) for p in fitted]
    assert np.array_equal(scores[0], scores[1]) and not np.allclose(scores[0], scores[2])
    upside_down = [np.ascontiguousarray(image[::-1]) for image in small_held_out]
    assert fitted[0].score(default_espnet, upside_down).min() > scores[0].max()
    with pytest.raises(DaainError, match="expected at least 1 and 2"):
        SecretProjections.fit(default_espnet, typical.statistics, calibration[:1], 8, 1)


def test_defences_learn_from_earlier_frames_than_those_that_calibrate_them():
    split = split_fit(list(range(20)), 4)
    assert (split.statistics, split.learn) == ([0, 4, 8, 12, 16], [0, 4, 8])
    assert (split.early, split.late) == ([1, 2, 3, 5, 6, 7, 9], [10, 11, 13, 14, 15, 17, 18, 19])
    assert sorted(split.statistics + split.calibration) == list(range(20))
    with pytest.raises(DaainError, match="2 calibration frames in each half"):
        split_fit(list(range(6)), 2)


def test_daain_defences_judges_every_attacker_with_every_defence(tmp_path, default_espnet, small_fit_frames,
                                                                 small_frames):
    config = FitConfig(size=SIZE, target_dims=150, augment_copies=1, calibration_folds=0, key_seed=1,
                       flow=FlowConfig(epochs=2, blocks=2))
    detector = save_detector(fit_detector(default_espnet, small_fit_frames, config, progress=False),
                             tmp_path / "detector", default_espnet)
    out = tmp_path / "defences"
    assert main(["defences", "--detector", str(detector), "--model", str(default_model_path()), "--data",
                 "synthetic:9:8", "--fit-data", "synthetic:3:20", "--statistics-stride", "4", "--adaptive-steps", "3",
                 "--adaptive-restarts", "1", "--adaptive-every", "4", "--directions", "4", "--students", "2",
                 "--student-epochs", "3", "--device", "cpu",
                 "--out", str(out)]) == 0
    document = json.loads((out / "defences.json").read_text())
    assert (document["frames"], document["clean_frames"], document["statistics_frames"],
            document["calibration_frames"], document["late_calibration_frames"], document["learning_frames"],
            document["twin_learning_frames"]) == (2, 8, 5, 15, 8, 5, 3)
    assert document["seconds_per_student"] > 0
    attackers = [a["attacker"] for a in document["attackers"]]
    assert attackers[3:] == ["key-agnostic + 2 surrogate students (EOT)",
                             "key-agnostic + 2 surrogate students (EOT), held-out threshold"]
    for attacker in document["attackers"]:
        assert attacker["daain_flagged"] == (np.array(attacker["daain_scores"]) > document["threshold"]).tolist()
        assert attacker["damaged"] == (np.array(attacker["pixel_agreement"]) <= 0.5).tolist()
    assert [d["defence"] for d in document["defences"]] == ["jpeg", "jpeg-secret-offset", "secret-projections",
                                                            "secret-student"]
    # the study's held-out values are the check's on the held-out frames at the network size, measured here again
    np.testing.assert_allclose(document["defences"][0]["clean_values"],
                               JpegConsistency(default_espnet, SIZE, 50)(small_frames("synthetic:9:8")))
    # the student's threshold is its twin's: trained on the first half's statistics frames from the study's fourth
    # secret stream (seed 0), it flags 5 % of the second half's other frames
    split = split_fit(small_frames("synthetic:3:20"), 4)
    twin = train_student(default_espnet, split.learn, SIZE, _torch_seed(np.random.SeedSequence(0).spawn(4)[3]), 3)
    assert document["defences"][3]["threshold"] == pytest.approx(
        np.quantile(StudentCheck(default_espnet, twin, SIZE)(split.late), 0.05), abs=1e-9)
    for defence, adapted in zip(document["defences"], (attackers[1:2], attackers[2:3], [], attackers[3:])):
        assert [row["attacker"] for row in defence["attackers"]] == attackers
        assert [row["attacker"] for row in defence["attackers"] if row["adapted"]] == adapted
        clean = np.array(defence["clean_values"])
        flags = clean > defence["threshold"] if defence["flags"] == "above" else clean < defence["threshold"]
        assert defence["clean_flag_rate"] == flags.mean()
        for row, attacker in zip(defence["attackers"], document["attackers"]):
            missed = np.array(attacker["damaged"]) & ~np.array(attacker["daain_flagged"])
            assert row["successes"] == (missed & ~np.array(row["flagged"])).tolist()
            shares = row.get("success_share_over_offsets")
            assert (shares is not None) == (defence["defence"] == "jpeg-secret-offset")
            assert shares is None or all(0 <= s <= m for s, m in zip(shares, missed))
    text = assemble(tmp_path / "results.md", [str(out)]).read_text()
    assert "## Defences tried against the key-agnostic attacker (`daain defences`)" in text
    report = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| ")]
    assert len(report) == 1 + 5 + 1 + 4 * 5 and all(line in text.splitlines() for line in report)


@pytest.mark.parametrize("option, value, message", [
    ("--clean-rate", "2", "clean rate 2.0"), ("--quality", "101", "JPEG quality 101"),
    ("--statistics-stride", "1", "statistics stride 1"), ("--students", "0", "expected an integer of at least 1"),
    ("--eps", "0", "eps 0.0")])
def test_bad_settings_are_one_line_before_anything_loads(tmp_path, capsys, option, value, message):
    missing = str(tmp_path / "missing")
    assert main(["defences", "--detector", missing, "--model", missing, "--data", missing, "--fit-data", missing,
                 option, value, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("daain defences: error:") and message in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()
