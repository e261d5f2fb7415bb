# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""L-infinity adversarial attacks on ESPNet through the full official preprocessing.

The perturbation lives on the camera image (any size, [0, 1] units, budget ``eps``): the network input is
``normalize(resize(image + delta))`` with torch's bilinear resize (``align_corners=False``, which equals
``cv2.INTER_LINEAR`` as ``preprocess`` uses it), so gradients see exactly what the node sees and the result
is rounded back to a valid uint8 image with every pixel within ``floor(eps * 255)`` of the original.

- ``fgsm``: Goodfellow et al., "Explaining and Harnessing Adversarial Examples", ICLR 2015 (one step).
- ``ifgsm``: Kurakin et al., "Adversarial Examples in the Physical World", ICLR-W 2017 (iterative FGSM).
- ``pgd``: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018
  (iterative FGSM from a uniform random start in the eps-ball).
- ``uap``: Moosavi-Dezfooli et al., "Universal Adversarial Perturbations", CVPR 2017; fitted here by
  projected sign-gradient ascent on the summed loss over the fit images (as Metzen et al., "Universal
  Adversarial Perturbations Against Semantic Image Segmentation", ICCV 2017) rather than by DeepFool.

Untargeted attacks push every pixel away from the clean prediction; ``-road``/``-person`` pull every pixel
towards that class. Iterative attacks take ``DEFAULT_STEPS`` = 10 steps of ``2.5 * eps / steps`` (Madry's
step rule): about 3 s per 512x256 image on one CPU thread (FGSM 0.3-0.45 s).
"""

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from daain_ros.errors import DaainError, ImageError
from daain_ros.evaluation.metrics import miou
from daain_ros.segmentation.cityscapes import PERSON, ROAD
from daain_ros.segmentation.network_size import DEFAULT_SIZE, check_network_size
from daain_ros.segmentation.preprocess import normalize, preprocess

ATTACKS = ("fgsm", "fgsm-road", "ifgsm", "ifgsm-person", "pgd", "uap")
DEFAULT_EPS = 4 / 255
DEFAULT_STEPS = 10
BATCH_SIZE = 4

#: kind -> (target class or None for untargeted, iterative, random start)
_SPECS = {
    "fgsm": (None, False, False),
    "fgsm-road": (ROAD, False, False),
    "ifgsm": (None, True, False),
    "ifgsm-person": (PERSON, True, False),
    "pgd": (None, True, True),
}


def network_input(unit_bgr, size):
    """Differentiable official preprocessing of Nx3xHxW BGR in [0, 1] at camera size to ``size``."""
    width, height = size
    if unit_bgr.shape[-2:] != (height, width):
        unit_bgr = F.interpolate(unit_bgr, size=(height, width), mode="bilinear", align_corners=False)
    return normalize(unit_bgr)


def predict_labels(model, images_bgr, size=DEFAULT_SIZE, batch_size=BATCH_SIZE):
    """Train-id maps (N x height x width, uint8) of BGR uint8 images at network ``size``."""
    device = model.device
    labels = []
    with torch.inference_mode():
        for start in range(0, len(images_bgr), batch_size):
            x = preprocess(images_bgr[start:start + batch_size], size, device)
            labels.append(model.logits(x).argmax(1).byte().cpu())
    return torch.cat(labels).numpy()


def check_images(images_bgr):
    images = [np.asarray(im) for im in images_bgr]
    if not images:
        raise ImageError("no images given: expected at least one HxWx3 BGR uint8 image")
    shape = images[0].shape
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ImageError(f"image of shape {image.shape} and dtype {image.dtype}: expected HxWx3 BGR uint8")
        if image.shape != shape:
            raise ImageError(f"image of shape {image.shape} among images of shape {shape}: expected one size")
    return images


def check_budget(eps, steps):
    if not 1 / 255 - 1e-9 <= eps <= 1:
        raise DaainError(f"eps {eps!r}: expected a budget from 1/255 to 1 in [0, 1] pixel units (e.g. 4/255); "
                         "smaller ones vanish when rounded to uint8")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise DaainError(f"steps {steps!r}: expected a positive integer")


def pixel_batch(images, device):
    """Nx3xHxW uint8 on ``device``: four times smaller than floats, for fitting a UAP on many frames."""
    return torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2)


def reference_labels(model, pixels, target, size):
    """What each attack measures its loss against: the clean prediction, or the target class everywhere."""
    if target is not None:
        return torch.full((len(pixels), size[1], size[0]), target, dtype=torch.uint8, device=pixels.device)
    with torch.no_grad():
        return torch.cat([model.logits(network_input(pixels[i:i + BATCH_SIZE] / 255.0, size)).argmax(1).byte()
                          for i in range(0, len(pixels), BATCH_SIZE)])


def _objective(model, unit, labels, targeted, size):
    """What the attacker minimises, summed over images (each image's gradient is its own)."""
    loss = F.cross_entropy(model.logits(network_input(unit, size)), labels.long(), reduction="none").mean((1, 2))
    return (loss if targeted else -loss).sum()


def _sign_descent(model, pixels, labels, delta, targeted, alpha, steps, eps, size):
    """Projected sign-gradient descent on ``delta``: Nx3xHxW per image, or 1x3xHxW shared (universal).

    A universal delta takes one step per pass over all images, along its gradient summed over them.
    """
    if torch.is_inference_mode_enabled():
        raise DaainError("attacks need gradients: expected a call outside torch.inference_mode()")
    universal = delta.shape[0] != pixels.shape[0]
    for _ in range(steps):
        delta.requires_grad_(True)
        grad = torch.zeros_like(delta)
        for start in range(0, len(pixels), BATCH_SIZE):
            chunk = slice(start, start + BATCH_SIZE)
            with torch.enable_grad():  # also when the caller runs under no_grad
                perturbed = (pixels[chunk] / 255.0 + (delta if universal else delta[chunk])).clamp(0, 1)
                objective = _objective(model, perturbed, labels[chunk], targeted, size)
                grad += torch.autograd.grad(objective, delta)[0]
        delta = (delta.detach() - alpha * grad.sign()).clamp(-eps, eps)
        if not universal:  # stay a valid image; a universal delta is clipped per image when applied
            delta = (pixels / 255.0 + delta).clamp(0, 1) - pixels / 255.0
    return delta


def quantize(delta, eps):
    """Whole pixel steps within the budget, so rounding to uint8 never leaves the eps-ball."""
    limit = math.floor(eps * 255 + 1e-6)
    return (delta * 255).round().clamp(-limit, limit)


def _attack_batch(model, images, kind, eps, size, steps, generator):
    target, iterative, random_start = _SPECS[kind]
    pixels = pixel_batch(images, model.device)
    labels = reference_labels(model, pixels, target, size)
    steps = (steps or DEFAULT_STEPS) if iterative else 1
    alpha = 2.5 * eps / steps if iterative else eps
    delta = torch.zeros(pixels.shape, device=pixels.device)
    if random_start:
        noise = torch.rand(pixels.shape, generator=generator).to(pixels.device)
        delta = ((pixels / 255.0 + (2 * noise - 1) * eps).clamp(0, 1) - pixels / 255.0)
    delta = _sign_descent(model, pixels, labels, delta, target is not None, alpha, steps, eps, size)
    perturbed = (pixels.float() + quantize(delta, eps)).clamp(0, 255).byte()
    return [np.ascontiguousarray(im) for im in perturbed.permute(0, 2, 3, 1).cpu().numpy()]


def attack(model, images_bgr, kind, eps=DEFAULT_EPS, size=DEFAULT_SIZE, seed=0, steps=None):
    """Perturbs BGR uint8 images (one size) with attack ``kind``; returns uint8 images of that size.

    :param steps: iterations of the iterative attacks and the UAP fit (default ``DEFAULT_STEPS``);
        FGSM is one step whatever is given.
    ``uap`` fits one perturbation on ``images_bgr`` themselves and applies it to them; to attack held-out
    frames, call ``fit_uap`` on fit frames and ``apply_uap`` on the others.
    """
    if kind not in ATTACKS:
        raise DaainError(f"attack {kind!r}: expected one of {', '.join(ATTACKS)}")
    images = check_images(images_bgr)
    size = check_network_size(*size)
    check_budget(eps, steps)
    if kind == "uap":
        return apply_uap(images, fit_uap(model, images, eps, size, seed, steps))
    generator = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(images), BATCH_SIZE):
        out += _attack_batch(model, images[start:start + BATCH_SIZE], kind, eps, size, steps, generator)
    return out


def fit_uap(model, images_bgr, eps=DEFAULT_EPS, size=DEFAULT_SIZE, seed=0, steps=None):
    """A universal perturbation (HxWx3 float32 in [0, 1] units, whole pixel steps) for images of one size.

    Untargeted: every fit image is pushed away from its clean prediction. Each of ``steps`` (default
    ``DEFAULT_STEPS``) sign steps of ``2.5 * eps / steps`` uses the gradient summed over all fit images,
    from a uniform random start drawn with ``seed``.
    """
    images = check_images(images_bgr)
    size = check_network_size(*size)
    check_budget(eps, steps)
    steps = steps or DEFAULT_STEPS
    pixels = pixel_batch(images, model.device)
    labels = reference_labels(model, pixels, None, size)
    generator = torch.Generator().manual_seed(seed)
    start = ((2 * torch.rand((1,) + pixels.shape[1:], generator=generator) - 1) * eps).to(pixels.device)
    delta = _sign_descent(model, pixels, labels, start, False, 2.5 * eps / steps, steps, eps, size)
    return quantize(delta, eps)[0].permute(1, 2, 0).cpu().numpy() / np.float32(255)


def apply_uap(images_bgr, perturbation):
    """Adds a universal perturbation to BGR uint8 images, resized bilinearly if their size differs.

    Bilinear resizing mixes whole pixel steps, so it never exceeds the budget; rounding keeps it so.
    """
    perturbation = np.asarray(perturbation, np.float32)
    out = []
    for image in check_images(images_bgr):
        offsets = perturbation
        if offsets.shape != image.shape:
            offsets = cv2.resize(offsets, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
        out.append(np.clip(np.rint(image + offsets * 255), 0, 255).astype(np.uint8))
    return out


def compare_labels(clean_labels, labels):
    """Pixel agreement and mIoU of label maps against clean ones taken as ground truth.

    The mIoU counts every class either map has (``miou`` with ``count_predicted``): a class the attack
    paints in is part of the damage.
    """
    _, mean = miou(labels, clean_labels, classes=None, ignore=None, count_predicted=True)
    agreement = np.asarray(clean_labels).ravel() == np.asarray(labels).ravel()
    return {"pixel_agreement": float(agreement.mean()), "miou": mean}


def attack_effect(model, clean_images, attacked_images, size=DEFAULT_SIZE):
    """How much an attack changed the segmentation: ``compare_labels`` of the predictions at ``size``."""
    if len(clean_images) != len(attacked_images) or not clean_images:
        raise DaainError(f"{len(clean_images)} clean and {len(attacked_images)} attacked images: "
                         "expected the same positive number")
    return compare_labels(predict_labels(model, clean_images, size), predict_labels(model, attacked_images, size))
