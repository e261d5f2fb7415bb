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

Where the resize runs follows the device. For a CPU, OpenCV resizes on the host (at 960x540 to 512x256
its float kernel is faster there than torch's). For an accelerator, the uint8 frames are uploaded as
they are (a quarter of the bytes of float32) and converted and resized there with torch's bilinear
kernel (``align_corners=False``, the sampling of ``cv2.INTER_LINEAR``; on a CPU both give the same floats).
"""

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from daain_ros.errors import ImageError
from daain_ros.segmentation.network_size import DEFAULT_SIZE, check_network_size

#: Per-channel statistics of the official Cityscapes training set, in B, G, R order.
MEAN_BGR = (72.3923111, 82.90893555, 73.15840149)
STD_BGR = (45.3192215, 46.15289307, 44.91483307)


def check_image(image):
    """``image`` as an array once it is an HxWx3 BGR or HxW grey uint8 image; raises ``ImageError`` otherwise."""
    image = np.asarray(image)
    colour = image.ndim == 3 and image.shape[2] == 3
    if not (colour or image.ndim == 2) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"image of shape {image.shape}: expected HxWx3 BGR or HxW grey")
    if image.dtype != np.uint8:
        raise ImageError(f"image of dtype {image.dtype}: expected uint8")
    return image


def resize_bgr(image, size=DEFAULT_SIZE):
    """Resizes a BGR (or grey) uint8 image to ``size`` = (width, height): HxWx3 BGR float32 in [0, 255].

    Resizing in float, as the official code does after normalising; a uint8 resize rounds and changes
    about 2 % of the labels at 512x256.
    """
    check_network_size(*size)
    image = check_image(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    image = image.astype(np.float32)
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_LINEAR)


def to_unit_tensor(images_bgr, device="cpu"):
    """Stacks HxWx3 BGR images in [0, 255] (uint8 or float, same size) into Nx3xHxW floats in [0, 1]."""
    batch = np.stack([np.asarray(im) for im in images_bgr])
    tensor = torch.from_numpy(batch).to(device, non_blocking=True)
    return tensor.permute(0, 3, 1, 2).float().div_(255.0)


def upload(images, device):
    """Checked uint8 images of one shape as an NxHxWx3 uint8 tensor on ``device`` (grey expanded there).

    The copy to CUDA goes from pinned memory without waiting: the host goes on queueing the frame's work.
    """
    batch = torch.from_numpy(np.stack(images))
    if torch.device(device).type == "cuda":
        batch = batch.pin_memory()
    batch = batch.to(device, non_blocking=True)
    return batch if batch.dim() == 4 else batch[..., None].expand(-1, -1, -1, 3).contiguous()


def resize_unit(batch, size):
    """NxHxWx3 BGR uint8 (on any device) -> Nx3xhxw floats in [0, 1] at ``size`` = (w, h), resized in float."""
    width, height = size
    unit = batch.permute(0, 3, 1, 2).float()
    if unit.shape[-2:] != (height, width):
        unit = F.interpolate(unit, size=(height, width), mode="bilinear", align_corners=False)
    return unit.div_(255.0)


def normalize(unit_bgr):
    """Maps Nx3xHxW BGR in [0, 1] to the network input (differentiable; attacks go through it)."""
    mean, std = _per_channel(MEAN_BGR, unit_bgr), _per_channel(STD_BGR, unit_bgr)
    return (unit_bgr * 255.0 - mean) / std / 255.0


def to_pixels(x):
    """The inverse of ``normalize``: network input at network size back to BGR in [0, 255] (differentiable)."""
    return x * 255.0 * _per_channel(STD_BGR, x) + _per_channel(MEAN_BGR, x)


def _per_channel(values, like):
    """A 1x3x1x1 constant beside ``like``, copied without waiting for the device (``new_tensor`` would wait)."""
    return torch.tensor(values, dtype=like.dtype).view(1, 3, 1, 1).to(like.device, non_blocking=True)


def preprocess(images_bgr, size=DEFAULT_SIZE, device="cpu"):
    """The full official preprocessing of a list of BGR uint8 images of any size: Nx3xHxW input on ``device``."""
    if torch.device(device).type == "cpu":
        return normalize(to_unit_tensor([resize_bgr(im, size) for im in images_bgr], device))
    return normalize(unit_on_device(images_bgr, size, device))


def unit_on_device(images_bgr, size, device):
    """BGR uint8 images of any sizes uploaded as uint8, then converted and resized on ``device``: Nx3xhxw in [0, 1].

    Images of one shape go up and are resized together; a batch of mixed shapes goes image by image.
    """
    check_network_size(*size)
    images = [check_image(im) for im in images_bgr]
    groups = [images] if len({im.shape for im in images}) == 1 else [[im] for im in images]
    return torch.cat([resize_unit(upload(group, device), size) for group in groups])
