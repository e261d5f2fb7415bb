# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Procedural image corruptions with a severity 1-5: out-of-distribution inputs a camera can produce.

In the spirit of ImageNet-C (Hendrycks and Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", ICLR 2019), but generated without image assets (frost is drawn,
not pasted) and sized relative to the image, so any camera resolution gets the same amount. Every
function maps a BGR uint8 HxWx3 image, a severity and a ``numpy.random.Generator`` to a BGR uint8 image
of the same shape; the same seed gives the same image.
"""

import cv2
import numpy as np

from daain_ros.errors import DaainError, ImageError

SEVERITIES = (1, 2, 3, 4, 5)

#: Gaussian noise std in [0, 1] pixel units; severity 1 and 3 are the detector protocol's .03 and .08.
NOISE_SIGMA = (0.03, 0.05, 0.08, 0.12, 0.18)
#: Hue shift (degrees), saturation and contrast factors of the colour jitter.
JITTER = ((15, 0.8, 0.9), (30, 0.65, 0.8), (45, 0.5, 0.7), (70, 0.35, 0.6), (90, 0.2, 0.5))
#: Fog density: the mean share of each pixel replaced by airlight is about 0.75 times this.
FOG_DENSITY = (0.3, 0.45, 0.6, 0.7, 0.8)
FOG_AIRLIGHT = 0.8
#: Frost: (weight kept of the image, weight of the ice layer), ImageNet-C's blend weights.
FROST = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
#: Motion-blur kernel length as a fraction of the image width (960 px: 5, 10, 19, 29, 43 px).
BLUR_LENGTH = (0.005, 0.01, 0.02, 0.03, 0.045)
#: Night-like darkening: output = gain * input ** gamma, in [0, 1] units.
DARK = ((0.7, 1.2), (0.55, 1.4), (0.4, 1.6), (0.3, 1.8), (0.2, 2.0))
#: JPEG quality (ImageNet-C's).
JPEG_QUALITY = (25, 18, 15, 10, 7)
#: Fraction of the image area the lens blob covers.
OCCLUSION_AREA = (0.05, 0.1, 0.2, 0.3, 0.45)


def _unit(image):
    return image.astype(np.float32) / 255.0


def _to_uint8(unit):
    return np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)


def gaussian_noise(image, sigma, rng):
    """Adds i.i.d. Gaussian noise of std ``sigma`` (in [0, 1] pixel units) and clips to the valid range."""
    if not sigma >= 0:
        raise DaainError(f"noise sigma {sigma!r}: expected a number >= 0 in [0, 1] pixel units")
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    return _to_uint8(_unit(image) + noise)


def noise(image, severity, rng):
    """Sensor noise: ``gaussian_noise`` with sigma ``NOISE_SIGMA[severity - 1]``."""
    return gaussian_noise(image, NOISE_SIGMA[severity - 1], rng)


def color_jitter(image, severity, rng):
    """A white-balance/ISP fault: hue rotated by a random sign, saturation and contrast reduced."""
    degrees, saturation, contrast = JITTER[severity - 1]
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV_FULL).astype(np.float32)
    hsv[..., 0] = np.mod(hsv[..., 0] + rng.choice((-1, 1)) * degrees * 256.0 / 360.0, 256.0)
    hsv[..., 1] *= saturation
    shifted = cv2.cvtColor(np.clip(np.rint(hsv), 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR_FULL)
    unit = _unit(shifted)
    return _to_uint8((unit - unit.mean()) * contrast + unit.mean())


def fractal_noise(shape, rng, roughness, octaves=6):
    """Smooth random field in [0, 1] of ``shape`` (H, W): octaves of bilinearly upsampled noise."""
    height, width = shape
    field = np.zeros(shape, np.float32)
    for octave in range(octaves):
        cells = 2 ** (octave + 1)
        grid = rng.random((cells, max(2, cells * width // max(height, 1))), dtype=np.float32)
        field += roughness ** octave * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def fog(image, severity, rng):
    """Fog: the scattering model ``J t + A (1 - t)`` with a patchy (fractal) transmission ``t``."""
    haze = fractal_noise(image.shape[:2], rng, 0.5)[..., None]
    transmission = 1.0 - FOG_DENSITY[severity - 1] * (0.5 + 0.5 * haze)
    return _to_uint8(_unit(image) * transmission + FOG_AIRLIGHT * (1.0 - transmission))


def _ice_layer(shape, rng):
    """Frost crystals: many thin bright needles in clusters, softened, on a faint fractal rime."""
    height, width = shape
    ice = np.zeros(shape, np.float32)
    scale = max(height, width)
    for _ in range(int(200 * scale / 512)):
        cx, cy = rng.random(2) * (width, height)
        for _ in range(int(rng.integers(3, 9))):
            angle = rng.random() * 2 * np.pi
            length = scale * (0.005 + 0.03 * rng.random())
            end = (int(cx + length * np.cos(angle)), int(cy + length * np.sin(angle)))
            cv2.line(ice, (int(cx), int(cy)), end, float(0.4 + 0.6 * rng.random()), 1, cv2.LINE_AA)
    ice = cv2.GaussianBlur(ice, (0, 0), scale / 900 + 0.5)
    rime = fractal_noise(shape, rng, 0.6)
    return np.clip(ice + 0.6 * rime ** 2, 0, 1)


def frost(image, severity, rng):
    """Frost on the lens or windscreen: ImageNet-C's blend ``a * image + b * ice`` with drawn ice."""
    keep, weight = FROST[severity - 1]
    ice = _ice_layer(image.shape[:2], rng)[..., None]
    return _to_uint8(keep * _unit(image) + weight * ice)


def vflip(image, severity, rng):
    """An upside-down camera (mounting error): the same at every severity."""
    return np.ascontiguousarray(image[::-1])


def motion_blur(image, severity, rng):
    """Camera shake: a line kernel of ``BLUR_LENGTH`` times the width, at a random angle."""
    length = max(3, int(round(BLUR_LENGTH[severity - 1] * image.shape[1])) | 1)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length), flags=cv2.INTER_LINEAR)
    kernel /= kernel.sum()
    return _to_uint8(cv2.filter2D(_unit(image), -1, kernel, borderType=cv2.BORDER_REFLECT))


def dark(image, severity, rng):
    """Night-like exposure: ``gain * x ** gamma`` darkens shadows more than highlights."""
    gain, gamma = DARK[severity - 1]
    return _to_uint8(gain * _unit(image) ** gamma)


def jpeg(image, severity, rng):
    """Compression artefacts: an encode/decode round trip at ``JPEG_QUALITY``."""
    return jpeg_round_trip(image, JPEG_QUALITY[severity - 1])


def jpeg_round_trip(image, quality):
    """A BGR uint8 image JPEG-encoded at ``quality`` (1-100) and decoded again."""
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError(f"image of shape {image.shape}: JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def occlusion_mask(shape, area, rng):
    """A soft-edged ellipse covering about ``area`` of the image, wholly inside it (dirt, a leaf)."""
    height, width = shape
    aspect = rng.uniform(0.6, 1.6)
    axis_y = np.sqrt(area * height * width / (np.pi * aspect))
    axis_x = min(aspect * axis_y, width / 2 - 1)
    axis_y = min(area * height * width / (np.pi * axis_x), height / 2 - 1)
    cx = rng.uniform(axis_x, width - axis_x)
    cy = rng.uniform(axis_y, height - axis_y)
    mask = np.zeros(shape, np.float32)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(axis_x), int(axis_y)), float(rng.uniform(0, 180)), 0, 360,
                1.0, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (0, 0), 0.02 * min(height, width) + 0.5)


def occlusion(image, severity, rng):
    """A blocked lens: a dark, nearly uniform blob over ``OCCLUSION_AREA`` of the frame."""
    mask = occlusion_mask(image.shape[:2], OCCLUSION_AREA[severity - 1], rng)[..., None]
    colour = np.float32(rng.uniform(0.02, 0.12)) * np.float32((0.8, 0.9, 1.0))  # dark brown in BGR
    return _to_uint8((1 - mask) * _unit(image) + mask * colour)


CORRUPTIONS = {
    "color-jitter": color_jitter,
    "fog": fog,
    "frost": frost,
    "vflip": vflip,
    "noise": noise,
    "motion-blur": motion_blur,
    "dark": dark,
    "jpeg": jpeg,
    "occlusion": occlusion,
}


def check_severity(severity):
    """Severity must be one of 1-5 (an int, not a bool)."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise DaainError(f"severity {severity!r}: expected an integer 1-5")
    return int(severity)


def check_image(image):
    """A corruption input must be HxWx3 uint8 (BGR), at least 2x2 (blurs and resampling need neighbours)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 2:
        raise ImageError(f"image of shape {image.shape} and dtype {image.dtype}: expected HxWx3 BGR uint8, at "
                         "least 2x2")
    return image


def corrupt(kind, image_bgr, severity=3, seed=0):
    """Applies corruption ``kind`` at ``severity`` with a generator seeded by ``seed``."""
    if kind not in CORRUPTIONS:
        raise DaainError(f"corruption {kind!r}: expected one of {', '.join(CORRUPTIONS)}")
    rng = np.random.default_rng(seed)
    return CORRUPTIONS[kind](check_image(image_bgr), check_severity(severity), rng)
