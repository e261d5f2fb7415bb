# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The official ESPNet input pipeline, split so attacks can differentiate through its second half.

Official order: BGR float, subtract the BGR mean, divide by the BGR std, resize (bilinear), divide by
255. Normalisation is per-channel affine and bilinear resizing is linear, so resizing the raw BGR image
first and normalising after is the same map; that split gives a uint8 image at network size (what attacks
perturb and what the node segments) and a differentiable ``normalize``.
"""

import cv2
import numpy as np
import torch

from daain_ros.errors import ImageError
from daain_ros.segmentation.network_size import DEFAULT_SIZE, check_network_size

#: Per-channel statistics of the official Cityscapes training set, in B, G, R order.
MEAN_BGR = (72.3923111, 82.90893555, 73.15840149)
STD_BGR = (45.3192215, 46.15289307, 44.91483307)


def resize_bgr(image, size=DEFAULT_SIZE):
    """Resizes a BGR (or grey) uint8 image to ``size`` = (width, height): HxWx3 BGR float32 in [0, 255].

    Resizing in float, as the official code does after normalising; a uint8 resize rounds and changes
    about 2 % of the labels at 512x256.
    """
    check_network_size(*size)
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"image of shape {image.shape}: expected HxWx3 BGR or HxW grey")
    if image.dtype != np.uint8:
        raise ImageError(f"image of dtype {image.dtype}: expected uint8")
    image = image.astype(np.float32)
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_LINEAR)


def to_unit_tensor(images_bgr, device="cpu"):
    """Stacks HxWx3 BGR images in [0, 255] (uint8 or float, same size) into Nx3xHxW floats in [0, 1]."""
    batch = np.stack([np.asarray(im) for im in images_bgr])
    tensor = torch.from_numpy(batch).to(device, non_blocking=True)
    return tensor.permute(0, 3, 1, 2).float().div_(255.0)


def normalize(unit_bgr):
    """Maps Nx3xHxW BGR in [0, 1] to the network input (differentiable; attacks go through it)."""
    mean = unit_bgr.new_tensor(MEAN_BGR).view(1, 3, 1, 1)
    std = unit_bgr.new_tensor(STD_BGR).view(1, 3, 1, 1)
    return (unit_bgr * 255.0 - mean) / std / 255.0


def preprocess(images_bgr, size=DEFAULT_SIZE, device="cpu"):
    """The full official preprocessing of a list of BGR uint8 images of any size: Nx3xHxW input."""
    return normalize(to_unit_tensor([resize_bgr(im, size) for im in images_bgr], device))
