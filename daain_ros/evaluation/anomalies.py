# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""One registry over adversarial attacks and corruptions: every way an evaluation perturbs clean frames."""

from collections import defaultdict

from daain_ros.errors import DaainError
from daain_ros.evaluation.attacks import ATTACKS, DEFAULT_EPS, attack
from daain_ros.evaluation.corruptions import CORRUPTIONS, corrupt
from daain_ros.segmentation.network_size import DEFAULT_SIZE

KINDS = ATTACKS + tuple(CORRUPTIONS)


def is_attack(kind):
    """True for the attacks (they need the segmentation model), False for the corruptions."""
    if kind not in KINDS:
        raise DaainError(f"anomaly kind {kind!r}: expected one of {', '.join(KINDS)}")
    return kind in ATTACKS


def require_model(kind, model):
    """Attacks differentiate through the segmentation network: refuse one without it, naming the kind."""
    if is_attack(kind) and model is None:
        raise DaainError(f"attack {kind!r} needs the segmentation model (a checkpoint), got none")


def perturb(kind, images_bgr, *, severity=3, eps=DEFAULT_EPS, model=None, size=DEFAULT_SIZE, seed=0, steps=None):
    """Perturbed copies (BGR uint8, input sizes) of BGR uint8 images.

    Attacks use ``model``, ``eps``, ``size``, ``steps`` and ``seed`` (``attack``; they need images of one
    size); corruptions use ``severity`` and give image ``i`` the seed ``seed + i``, so perturbing a list
    equals perturbing each of its images alone with its own seed.
    """
    require_model(kind, model)
    if is_attack(kind):
        return attack(model, list(images_bgr), kind, eps=eps, size=size, seed=seed, steps=steps)
    return [corrupt(kind, image, severity, seed + i) for i, image in enumerate(images_bgr)]


def perturb_each_size(kind, images_bgr, **options):
    """:func:`perturb` for images of mixed sizes.

    Attacks other than ``uap`` run once per image size (a batch needs one size); corruptions and ``uap`` (fitted on
    all the images) take the whole list.
    """
    if kind == "uap" or not is_attack(kind):
        return perturb(kind, images_bgr, **options)
    by_shape = defaultdict(list)
    for index, image in enumerate(images_bgr):
        by_shape[image.shape].append(index)
    out = [None] * len(images_bgr)
    for indices in by_shape.values():
        for index, image in zip(indices, perturb(kind, [images_bgr[i] for i in indices], **options)):
            out[index] = image
    return out
