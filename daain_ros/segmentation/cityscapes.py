# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Cityscapes train ids as ESPNet predicts them: names, palette and the colour overlay."""

import numpy as np

CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle", "unlabelled",
)
UNLABELLED = 19
ROAD = CLASS_NAMES.index("road")
PERSON = CLASS_NAMES.index("person")

#: RGB colour of each train id (the official Cityscapes palette; unlabelled is black).
PALETTE_RGB = np.array([
    [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153],
    [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
    [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32],
    [0, 0, 0],
], dtype=np.uint8)


def colorize(train_ids):
    """The RGB palette image (H x W x 3) of H x W train ids."""
    return PALETTE_RGB[np.asarray(train_ids)]


def overlay(image_bgr, train_ids, alpha=0.5):
    """Blends the palette over a BGR image of the same size; returns RGB uint8."""
    rgb = np.asarray(image_bgr)[..., ::-1].astype(np.float32)
    blended = (1 - alpha) * rgb + alpha * colorize(train_ids).astype(np.float32)
    return blended.round().astype(np.uint8)
