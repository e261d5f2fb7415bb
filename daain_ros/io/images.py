# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Reading and writing image files with errors that name the file."""

from pathlib import Path

import cv2
import numpy as np

from daain_ros.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def read_bgr(path):
    """Reads an image file as HxWx3 BGR uint8 (OpenCV order, as ESPNet was trained)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path}: cannot be decoded as an image")
    return image


def write_image(path, image):
    """Writes an image (BGR, or single channel) and fails loudly, unlike ``cv2.imwrite``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image)):
        raise ImageError(f"{path}: cannot be written")
    return path
