# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""An adaptive attacker: damage the segmentation while a critic (a detector, or a proxy of one) stays quiet.

Built the way adaptive attacks on detectors are built to count (Carlini & Wagner, "Adversarial Examples Are
Not Easily Detected", AISec 2017; Tramer et al., "On Adaptive Attacks to Adversarial Example Defenses",
NeurIPS 2020):

- the damage is bounded: each pixel's logit margin of its clean class over the best other class, clamped at
  ``-kappa``, so pixels already flipped stop pulling against the critic;
- the critic term is a hinge on ``score - threshold + margin``, zero once the critic is quiet enough;
- the hinge's weight is searched per image (Carlini-Wagner): each of ``restarts`` rounds of ``steps`` sign
  steps (step size decaying geometrically) starts from a fresh random point in the ball, with the weight
  raised for an image that ended damaged but caught and lowered for one that ended undamaged;
- every iterate is the rounded uint8 image (straight-through rounding), so what the attacker judges is what
  is sent; it keeps, per image, the damaged iterate its critic scores lowest, and stops on an image once it
  is damaged (pixel agreement with the clean prediction <= ``DAMAGED``) and below its critic's thresholds by
  the margin.

The critic (``daain_ros.evaluation.adaptive_critics``, ``daain_ros.evaluation.key_agnostic``) is all the
attacker knows of the detector; whether the result is flagged is for the real detector to say.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch

from daain_ros.errors import DaainError, ImageError
from daain_ros.evaluation.attacks import (check_budget, check_images, network_input, pixel_batch, quantize,
                                          reference_labels)

DAMAGED = 0.5  # pixel agreement with the clean prediction at or below which the segmentation counts as damaged
DAMAGE_SLACK = 0.1  # the attacker damages down to an agreement of DAMAGED - DAMAGE_SLACK, no further


@dataclass(frozen=True)
class AdaptiveConfig:
    """How hard the adaptive attacker tries (the defaults: the protocol's, docs/evaluation.md)."""

    steps: int = 100
    restarts: int = 2
    weight: float = 10.0
    weight_factor: float = 10.0
    kappa: float = 2.0
    first_step: float = 1 / 4
    last_step: float = 1 / 64
    batch_size: int = 4

    def __post_init__(self):
        for name in ("steps", "restarts", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DaainError(f"{name} {value!r}: expected a positive integer")
        steps = 0 < self.last_step <= self.first_step
        if not (self.weight >= 0 and self.weight_factor > 1 and self.kappa > 0 and steps):
            raise DaainError(f"weight {self.weight}, weight_factor {self.weight_factor}, kappa {self.kappa}, steps "
                             f"{self.first_step}-{self.last_step}: expected weight >= 0, factor > 1, kappa > 0 and "
                             "0 < last_step <= first_step")


@dataclass
class AdaptiveOutcome:
    """The attacked uint8 images, the sign steps spent on each and the wall time of the whole attack."""

    images: list
    steps: np.ndarray
    seconds: float


def damage(logits, labels, kappa):
    """Per image: mean over pixels of the clean class's logit margin, clamped at ``-kappa`` (lower = damaged)."""
    labels = labels.long()[:, None]
    true = logits.gather(1, labels)
    best_other = logits.scatter(1, labels, float("-inf")).amax(1, keepdim=True)
    return (true - best_other).clamp_min(-kappa).mean((1, 2, 3))


class _Search:
    """Per-image hinge weights and the best iterate so far (Carlini-Wagner's bisection, in factors)."""

    def __init__(self, pixels, config):
        n = len(pixels)
        self.weight = torch.full((n,), config.weight, device=pixels.device)
        self.low = torch.zeros(n, device=pixels.device)
        self.high = torch.full((n,), float("inf"), device=pixels.device)
        self.factor = config.weight_factor
        self.offsets = torch.zeros(pixels.shape, dtype=torch.int16, device=pixels.device)
        self.damaged = torch.zeros(n, dtype=torch.bool, device=pixels.device)
        self.value = torch.full((n,), float("inf"), device=pixels.device)
        self.round_damaged = torch.zeros(n, dtype=torch.bool, device=pixels.device)

    @property
    def succeeded(self):
        """Damaged and below every critic limit: the attacker's own verdict."""
        return self.damaged & (self.value <= 0)

    def record(self, images, offsets, agreement, excess):
        """Keeps better iterates of ``images``; returns which of them are damaged.

        Better: damaged where the best was not, or as damaged with a lower critic excess (damaged) or a lower
        pixel agreement (undamaged).
        """
        damaged = agreement <= DAMAGED
        value = torch.where(damaged, excess, agreement)
        was_damaged = self.damaged[images]
        better = (damaged & ~was_damaged) | ((damaged == was_damaged) & (value < self.value[images]))
        chosen = images[better]
        self.damaged[chosen], self.value[chosen] = damaged[better], value[better]
        self.offsets[chosen] = offsets[better].to(self.offsets.dtype)
        self.round_damaged[images] |= damaged
        return damaged

    def next_round(self, images):
        """Raises the weight of images that ended damaged but caught, lowers it for undamaged ones."""
        caught = self.round_damaged[images] & ~self.succeeded[images]
        undamaged = ~self.round_damaged[images]
        self.low[images[caught]] = self.weight[images[caught]]
        self.high[images[undamaged]] = self.weight[images[undamaged]]
        low, high = self.low[images], self.high[images]
        bisect = (low > 0) & torch.isfinite(high)
        moved = torch.where(caught, low * self.factor, high / self.factor)
        self.weight[images] = torch.where(bisect, (low * high).sqrt(), moved)
        self.round_damaged[images] = False


def _step_size(eps, config, step):
    """Geometric decay from ``first_step * eps`` to ``last_step * eps`` over a round."""
    progress = step / max(config.steps - 1, 1)
    return eps * config.first_step * (config.last_step / config.first_step) ** progress


def _objective(critic, unit, labels, limits, weight, kappa):
    """(per-image loss, pixel agreement, worst critic excess) of one forward on ``unit`` (the rounded images).

    The damage term counts until an image is damaged with ``DAMAGE_SLACK`` to spare; from there on only the
    critic pulls, so the attacker spends the budget on staying quiet rather than on damage it does not need.
    """
    logits, scores = critic(network_input(unit, (unit.shape[-1], unit.shape[-2])))
    excess = scores - limits
    agreement = (logits.detach().argmax(1) == labels).float().mean((1, 2))
    pulling = (agreement > DAMAGED - DAMAGE_SLACK).float()
    hinge = (excess + critic.margin).clamp_min(0).mean(1)
    return pulling * damage(logits, labels, kappa) + weight * hinge, agreement, excess.detach().amax(1)


def _descend(critic, pixels, labels, limits, images, delta, search, eps, config, spent):
    """One round of sign steps on ``delta`` (the images ``images`` of the chunk); stops each image at its goal."""
    running = images
    for step in range(config.steps):
        rows = torch.searchsorted(images, running)
        current = delta[rows].requires_grad_(True)
        offsets = quantize(current.detach(), eps)
        with torch.enable_grad():
            pixel_values = pixels[running] + current * 255 + (offsets - current * 255).detach()  # straight through
            loss, agreement, worst = _objective(critic, pixel_values.clamp(0, 255) / 255, labels[running],
                                                limits[running], search.weight[running], config.kappa)
            grad, = torch.autograd.grad(loss.sum(), current)
        damaged = search.record(running, offsets, agreement, worst)
        spent[running] += 1
        moved = (current.detach() - _step_size(eps, config, step) * grad.sign()).clamp(-eps, eps)
        delta[rows] = (pixels[running] / 255 + moved).clamp(0, 1) - pixels[running] / 255
        running = running[~(damaged & (worst <= -critic.margin))]
        if not len(running):
            return


def _attack_chunk(critic, pixels, labels, eps, config, generator):
    size = (pixels.shape[-1], pixels.shape[-2])
    with torch.no_grad():
        limits = critic.limits(critic(network_input(pixels / 255, size))[1])
    search = _Search(pixels, config)
    spent = torch.zeros(len(pixels), dtype=torch.long, device=pixels.device)
    for _ in range(config.restarts):
        noise = (2 * torch.rand(pixels.shape, generator=generator) - 1).to(pixels.device) * eps
        images = (~search.succeeded).nonzero().squeeze(1)
        if not len(images):
            break
        delta = (pixels[images] / 255 + noise[images]).clamp(0, 1) - pixels[images] / 255
        _descend(critic, pixels, labels, limits, images, delta, search, eps, config, spent)
        search.next_round(images)
    return (pixels + search.offsets).clamp(0, 255).byte(), spent


def adaptive_attack(model, critic, images_bgr, eps, config=AdaptiveConfig(), seed=0):
    """Attacks BGR uint8 images at the critic's network size; returns an ``AdaptiveOutcome``.

    :param critic: ``critic(x) -> (logits, scores N x K)`` of ``model``, its ``limits(clean scores)``
        (N x K: the scores above which it counts itself caught) and its ``margin`` (``DetectorCritic``,
        ``TypicalityCritic``).
    """
    images = check_images(images_bgr)
    check_budget(eps, None)
    if torch.is_inference_mode_enabled():
        raise DaainError("attacks need gradients: expected a call outside torch.inference_mode()")
    size = (images[0].shape[1], images[0].shape[0])
    if size != tuple(critic.size):
        raise ImageError(f"images of {size[0]}x{size[1]}: expected the critic's network size "
                         f"{critic.size[0]}x{critic.size[1]}")
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    attacked, spent = [], []
    for start in range(0, len(images), config.batch_size):
        pixels = pixel_batch(images[start:start + config.batch_size], model.device).float()
        labels = reference_labels(model, pixels.byte(), None, size)
        out, steps = _attack_chunk(critic, pixels, labels, eps, config, generator)
        attacked += [np.ascontiguousarray(im) for im in out.permute(0, 2, 3, 1).cpu().numpy()]
        spent.append(steps.cpu().numpy())
    return AdaptiveOutcome(attacked, np.concatenate(spent), time.perf_counter() - started)
