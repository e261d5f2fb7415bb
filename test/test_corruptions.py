# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Corruptions: valid images, seeded, and each changes the image by the amount its table says."""

import cv2
import numpy as np
import pytest

from daain_ros.cli.main import main
from daain_ros.errors import DaainError, ImageError
from daain_ros.evaluation import corruptions as C
from daain_ros.evaluation.anomalies import KINDS, is_attack, perturb, require_model

RANDOM_KINDS = ("fog", "frost", "noise", "motion-blur", "occlusion")  # colour jitter: only a random sign


@pytest.fixture(scope="module")
def scene():
    """A 120x200 test scene with edges, gradients and colour (stands in for a camera frame)."""
    rng = np.random.default_rng(7)
    image = cv2.resize(rng.integers(0, 256, (6, 10, 3), dtype=np.uint8), (200, 120), interpolation=cv2.INTER_CUBIC)
    cv2.rectangle(image, (40, 30), (90, 80), (20, 200, 240), -1)
    return image


def constant(value, shape=(120, 200, 3)):
    return np.full(shape, value, np.uint8)


@pytest.mark.parametrize("kind", list(C.CORRUPTIONS))
@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_valid_seeded_and_changing(scene, kind, severity):
    out = C.corrupt(kind, scene, severity, seed=3)
    assert out.shape == scene.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    assert np.abs(out.astype(int) - scene).mean() > 0.5
    np.testing.assert_array_equal(out, C.corrupt(kind, scene, severity, seed=3))
    if kind in RANDOM_KINDS:
        assert not np.array_equal(out, C.corrupt(kind, scene, severity, seed=4))


def test_noise_sigma_per_severity_and_explicit():
    grey = constant(128, (200, 300, 3))
    measured = {}
    for severity, sigma in zip(C.SEVERITIES, C.NOISE_SIGMA):
        diff = C.corrupt("noise", grey, severity).astype(float) - 128
        measured[severity] = diff.std() / 255
        assert measured[severity] == pytest.approx(sigma, rel=0.03) and abs(diff.mean()) < 0.5
    assert (measured[1], measured[3]) == pytest.approx((0.03, 0.08), rel=0.03)  # the detector protocol's levels
    rng = np.random.default_rng(0)
    assert (C.gaussian_noise(grey, 0.03, rng).astype(float) - 128).std() / 255 == pytest.approx(0.03, rel=0.03)
    np.testing.assert_array_equal(C.gaussian_noise(grey, 0.0, rng), grey)
    with pytest.raises(DaainError, match="sigma"):
        C.gaussian_noise(grey, -0.1, rng)


def test_vflip_is_exact(scene):
    np.testing.assert_array_equal(C.corrupt("vflip", scene, 5), scene[::-1])


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_dark_is_gain_times_gamma(severity):
    gain, gamma = C.DARK[severity - 1]
    out = C.corrupt("dark", constant(200), severity)
    assert np.all(out == round(255 * gain * (200 / 255) ** gamma))


def test_jpeg_is_the_round_trip_at_its_quality(scene):
    errors = []
    for severity, quality in zip(C.SEVERITIES, C.JPEG_QUALITY):
        expected = cv2.imdecode(cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)
        out = C.corrupt("jpeg", scene, severity)
        np.testing.assert_array_equal(out, expected)
        errors.append(np.abs(out.astype(int) - scene).mean())
    assert errors == sorted(errors)


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_fog_replaces_between_half_and_all_of_its_density_with_airlight(severity):
    density = C.FOG_DENSITY[severity - 1]
    share = C.corrupt("fog", constant(0), severity, seed=1).astype(float) / 255 / C.FOG_AIRLIGHT
    assert density / 2 - 0.01 <= share.min() and share.max() <= density + 0.01
    assert share.max() - share.min() > density / 4  # patchy, not uniform


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_frost_adds_a_bounded_ice_layer(severity):
    keep, weight = C.FROST[severity - 1]
    ice = C.corrupt("frost", constant(0), severity, seed=2).astype(float) / 255
    assert ice.max() <= weight + 0.01 and ice.max() > 0.5 * weight and 0.02 < ice.mean() < weight / 2
    darkened = C.corrupt("frost", constant(100), severity, seed=2).astype(float)
    np.testing.assert_allclose(darkened, 255 * (keep * 100 / 255 + ice), atol=1.01)


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_motion_blur_spreads_a_dot_over_its_length_and_keeps_the_mean(scene, severity):
    dot = constant(0, (200, 400, 3))
    dot[100, 200] = 255
    blurred = C.corrupt("motion-blur", dot, severity, seed=5)[..., 0]
    length = max(3, round(C.BLUR_LENGTH[severity - 1] * 400) | 1)
    ys, xs = np.nonzero(blurred)
    assert np.hypot(np.ptp(xs), np.ptp(ys)) == pytest.approx(length, abs=2.5)
    assert abs(C.corrupt("motion-blur", scene, severity).mean() - scene.mean()) < 0.5
    assert np.array_equal(C.corrupt("motion-blur", constant(90), severity), constant(90))


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_occlusion_covers_its_area(severity):
    out = C.corrupt("occlusion", constant(220, (240, 400, 3)), severity, seed=severity)
    covered = (out < 110).mean()
    assert covered == pytest.approx(C.OCCLUSION_AREA[severity - 1], rel=0.15)
    assert out.min() < 40  # dark where the blob is opaque


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_color_jitter_rotates_hue_and_reduces_saturation(severity):
    degrees, saturation, contrast = C.JITTER[severity - 1]
    colour = constant(0, (60, 80, 3))
    colour[...] = (40, 90, 220)  # BGR: a saturated orange-red
    before = cv2.cvtColor(colour[:1, :1], cv2.COLOR_BGR2HSV_FULL)[0, 0].astype(float)
    signs = set()
    for seed in range(8):
        out = C.corrupt("color-jitter", colour, severity, seed=seed)
        after = cv2.cvtColor(out[:1, :1], cv2.COLOR_BGR2HSV_FULL)[0, 0].astype(float)
        shift = (after[0] - before[0] + 128) % 256 - 128
        assert abs(abs(shift) - degrees * 256 / 360) <= 3
        # the contrast step pulls colours towards the grey mean too, lowering saturation further
        assert saturation * contrast - 0.05 <= after[1] / before[1] <= saturation + 0.02
        signs.add(np.sign(shift))
    assert signs == {-1, 1}


@pytest.mark.parametrize("severity", [0, 6, 2.0, True, "3"])
def test_bad_severity_is_refused(scene, severity):
    with pytest.raises(DaainError, match="expected an integer 1-5"):
        C.corrupt("fog", scene, severity)


def test_bad_kind_and_image_are_refused(scene):
    with pytest.raises(DaainError, match="corruption 'rain': expected one of color-jitter"):
        C.corrupt("rain", scene)
    with pytest.raises(ImageError, match="expected HxWx3 BGR uint8"):
        C.corrupt("fog", scene[..., 0])
    with pytest.raises(ImageError, match="expected HxWx3 BGR uint8"):
        C.corrupt("fog", scene.astype(np.float32))


def test_registry_order_and_perturb_seeds(scene):
    assert KINDS == ("fgsm", "fgsm-road", "ifgsm", "ifgsm-person", "pgd", "uap", "color-jitter", "fog", "frost",
                     "vflip", "noise", "motion-blur", "dark", "jpeg", "occlusion")
    assert [is_attack(k) for k in KINDS] == [True] * 6 + [False] * 9
    images = [scene, scene[::-1].copy(), scene]
    out = perturb("noise", images, severity=2, seed=10)
    for i, image in enumerate(images):
        np.testing.assert_array_equal(out[i], C.corrupt("noise", image, 2, 10 + i))
    with pytest.raises(DaainError, match="anomaly kind 'rain'"):
        is_attack("rain")
    with pytest.raises(DaainError, match="attack 'pgd' needs the segmentation model"):
        perturb("pgd", [scene])
    require_model("fog", None)


def test_perturb_cli_lists_writes_and_refuses(tmp_path, scene, capsys):
    assert main(["perturb", "--list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == list(KINDS)
    source = tmp_path / "frame.jpg"
    cv2.imwrite(str(source), scene)
    image = cv2.imread(str(source))
    assert main(["perturb", "--kind", "fog", "--severity", "4", "--seed", "9", str(source),
                 "--out", str(tmp_path / "out")]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "frame.png")), C.corrupt("fog", image, 4, 9))
    capsys.readouterr()
    for args, message in [(["--kind", "fgsm"], "attack 'fgsm' needs the segmentation model"),
                          (["--kind", "rain"], "anomaly kind 'rain'"),
                          (["--kind", "fog", "--severity", "7"], "severity 7: expected an integer 1-5"),
                          ([], "expected --kind KIND")]:
        assert main(["perturb", *args, str(source), "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("daain perturb: error:") and message in err
    assert not (tmp_path / "bad").exists()
