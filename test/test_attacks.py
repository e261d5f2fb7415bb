# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Attacks on the official p2q8 weights and a held-out footage frame at 512x256, with few steps."""

import cv2
import numpy as np
import pytest
import torch

from daain_ros.cli.main import main
from daain_ros.errors import DaainError, ImageError
from daain_ros.evaluation.attacks import (ATTACKS, apply_uap, attack, attack_effect, compare_labels, fit_uap,
                                          network_input, predict_labels)
from daain_ros.segmentation.cityscapes import PERSON, ROAD
from daain_ros.segmentation.preprocess import preprocess

HELD_OUT = 160  # the detector protocol fits on frames 0-149


@pytest.fixture(scope="module")
def frame(drive_frames):
    return drive_frames[HELD_OUT]


def sign_noise(image, pixels, seed=0):
    """Random +-``pixels`` noise: the budget of an attack without its direction."""
    steps = np.random.default_rng(seed).choice([-pixels, pixels], image.shape)
    return np.clip(image.astype(int) + steps, 0, 255).astype(np.uint8)


def seen_by_network(shape, size=(512, 256)):
    """Camera pixels that bilinear downscaling (no antialiasing) reads; the others get no gradient."""
    unit = torch.zeros((1, 3) + shape[:2], requires_grad=True)
    network_input(unit, size).sum().backward()
    return (unit.grad[0, 0] != 0).numpy()


@pytest.fixture(scope="module")
def noise_effect(p2q8, frame):
    """Pixel agreement and mIoU after random +-2 noise, the bar an attack at 2/255 must clear."""
    return attack_effect(p2q8, [frame], [sign_noise(frame, 2)])


def test_network_input_is_the_official_preprocessing_and_differentiable(frame):
    unit = (torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255).requires_grad_(True)
    x = network_input(unit, (512, 256))
    torch.testing.assert_close(x, preprocess([frame], (512, 256)), atol=1e-7, rtol=0)
    x[:, 1].sum().backward()
    assert unit.grad.shape == (1, 3, 540, 960) and unit.grad[:, 1].sum() > 0 and unit.grad[:, 0].abs().max() == 0


def test_compare_labels_by_hand():
    # class 0: intersection 1, union 2; class 1: intersection 2, union 3
    effect = compare_labels([[0, 0], [1, 1]], [[0, 1], [1, 1]])
    assert effect == pytest.approx({"pixel_agreement": 0.75, "miou": (1 / 2 + 2 / 3) / 2})
    assert compare_labels([3, 3], [3, 3]) == {"pixel_agreement": 1.0, "miou": 1.0}
    with pytest.raises(DaainError, match="expected the same positive number"):
        compare_labels([1, 2], [1])


def test_downscaling_skips_pixels(frame):
    assert 0.9 < seen_by_network(frame.shape).mean() < 0.99  # 540 -> 256 rows: 28 rows are never read


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fgsm", "ifgsm", "pgd"])
def test_untargeted_attacks_beat_random_noise_of_their_budget(p2q8, frame, noise_effect, kind):
    out, = attack(p2q8, [frame], kind, eps=2 / 255, steps=2)
    assert out.shape == frame.shape and out.dtype == np.uint8
    offsets = np.abs(out.astype(int) - frame)
    seen = seen_by_network(frame.shape)
    assert offsets.max() == 2
    if kind == "fgsm":  # one full step on every pixel the network reads, none elsewhere
        assert (offsets[seen] == 2).mean() > 0.97 and offsets[~seen].max() == 0
    effect = attack_effect(p2q8, [frame], [out])
    assert effect["pixel_agreement"] < noise_effect["pixel_agreement"] - 0.3 and effect["miou"] < noise_effect["miou"]


@pytest.mark.slow
@pytest.mark.parametrize("kind, eps, target", [("fgsm-road", 1 / 255, ROAD), ("ifgsm-person", 4 / 255, PERSON)])
def test_targeted_attacks_grow_their_class(p2q8, frame, kind, eps, target):
    out, = attack(p2q8, [frame], kind, eps=eps, steps=2)
    assert np.abs(out.astype(int) - frame).max() == round(eps * 255)
    before, after = predict_labels(p2q8, [frame, out])
    assert (after == target).mean() > (before == target).mean() + 0.05


@pytest.mark.slow
def test_pgd_is_seeded(p2q8, frame):
    small = cv2.resize(frame, (256, 128), interpolation=cv2.INTER_AREA)
    first, = attack(p2q8, [small], "pgd", steps=1, seed=3, size=(256, 128))
    again, = attack(p2q8, [small], "pgd", steps=1, seed=3, size=(256, 128))
    other, = attack(p2q8, [small], "pgd", steps=1, seed=4, size=(256, 128))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.slow
def test_uap_fitted_on_fit_frames_transfers_to_held_out_ones(p2q8, drive_frames):
    fit = [drive_frames[i] for i in (0, 60, 120)]
    held_out = [drive_frames[i] for i in (HELD_OUT, 200)]
    perturbation = fit_uap(p2q8, fit, eps=4 / 255, steps=2, seed=1)
    assert perturbation.shape == (540, 960, 3) and perturbation.dtype == np.float32
    steps = perturbation * 255
    np.testing.assert_allclose(steps, steps.round(), atol=1e-4)
    assert np.abs(steps).max() == pytest.approx(4)
    attacked = apply_uap(held_out, perturbation)
    assert all(np.abs(a.astype(int) - h).max() == 4 for a, h in zip(attacked, held_out))
    noise = attack_effect(p2q8, held_out, [sign_noise(h, 4) for h in held_out])
    assert attack_effect(p2q8, held_out, attacked)["pixel_agreement"] < noise["pixel_agreement"] - 0.1
    larger = cv2.resize(held_out[0], (1280, 720))
    assert np.abs(apply_uap([larger], perturbation)[0].astype(int) - larger).max() <= 4


@pytest.mark.slow
def test_uap_attack_fits_on_and_perturbs_the_same_images(p2q8, frame):
    images = [cv2.resize(frame, (256, 128), interpolation=cv2.INTER_AREA)]
    perturbation = fit_uap(p2q8, images, steps=1, seed=2, size=(256, 128))
    np.testing.assert_array_equal(attack(p2q8, images, "uap", steps=1, seed=2, size=(256, 128)),
                                  apply_uap(images, perturbation))


def test_bad_inputs_are_refused(p2q8, frame):
    with pytest.raises(DaainError, match="attack 'cw': expected one of fgsm"):
        attack(p2q8, [frame], "cw")
    with pytest.raises(ImageError, match="expected one size"):
        attack(p2q8, [frame, frame[:100]], "fgsm")
    with pytest.raises(DaainError, match="expected a budget from 1/255"):
        attack(p2q8, [frame], "fgsm", eps=0.5 / 255)
    with pytest.raises(DaainError, match="steps 0: expected a positive integer"):
        attack(p2q8, [frame], "pgd", steps=0)
    with pytest.raises(ImageError, match="no images given"):
        fit_uap(p2q8, [])
    small = cv2.resize(frame, (64, 32))
    with torch.inference_mode(), pytest.raises(DaainError, match="outside torch.inference_mode"):
        attack(p2q8, [small], "fgsm", size=(64, 32))
    with torch.no_grad():  # gradients are switched back on inside
        assert np.abs(attack(p2q8, [small], "fgsm", size=(64, 32))[0].astype(int) - small).max() == 4
    assert len(ATTACKS) == 6


@pytest.mark.slow
def test_perturb_cli_attacks_with_a_model(tmp_path, espnet_dir, footage_dir, capsys):
    stills = [footage_dir / "udacity_p1" / name for name in ("solidWhiteRight.jpg", "solidYellowLeft.jpg")]
    model = str(espnet_dir / "espnet_p_2_q_8.pth")
    for kind in ("fgsm", "uap"):
        assert main(["perturb", "--kind", kind, "--model", model, "--eps", "3/255", "--steps", "1", "--width", "128",
                     "--height", "64", *map(str, stills), "--out", str(tmp_path / kind)]) == 0
        for still in stills:
            change = np.abs(cv2.imread(str(tmp_path / kind / f"{still.stem}.png")).astype(int) - cv2.imread(str(still)))
            assert change.max() == 3
    assert "2 images (uap) written" in capsys.readouterr().err
