# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""sensor_msgs Image and CompressedImage <-> BGR arrays, without ROS.

PyPI's cv-bridge is a ROS 1 port that breaks with numpy 2, and the node, the bag tools and the tests
must also run where no ROS is installed; so the conversions live here, on plain fields. Decoded images
are HxWx3 BGR uint8 (OpenCV order, as ESPNet was trained), owned and writable. Every malformed message
raises :class:`ImageError` saying what was given and what was expected.
"""

import cv2
import numpy as np

from daain_ros.errors import ImageError

# encoding -> (bytes per pixel, cv2 conversion to BGR or None when the pixels are BGR already)
_DECODE = {
    "bgr8": (3, None),
    "rgb8": (3, cv2.COLOR_RGB2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, cv2.COLOR_RGBA2BGR),
    "mono8": (1, cv2.COLOR_GRAY2BGR),
}
# encoding -> (channels of the array given, cv2 conversion from it or None)
_ENCODE = {
    "bgr8": (3, None),
    "rgb8": (3, cv2.COLOR_BGR2RGB),
    "mono8": (1, None),
}
_COMPRESSED = {"jpeg": ".jpg", "png": ".png"}
DECODABLE_ENCODINGS = tuple(sorted(_DECODE))
ENCODABLE_ENCODINGS = tuple(sorted(_ENCODE))


def _as_bytes_array(data):
    """A flat uint8 view of a message's data (bytes, bytearray, memoryview, array.array or ndarray)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageError(f"image data has dtype {data.dtype}; expected uint8")
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"image data of type {type(data).__name__} is not a byte buffer") from exc


def decode_image(encoding, height, width, step, data, is_bigendian=0):
    """Decodes the fields of a sensor_msgs/Image into an HxWx3 BGR uint8 array.

    Rows may be padded (``step > width * bytes per pixel``); ``is_bigendian`` does not matter for the
    8-bit encodings supported here.
    """
    if encoding not in _DECODE:
        raise ImageError(f"image encoding {encoding!r} is not supported; expected one of "
                         f"{', '.join(DECODABLE_ENCODINGS)}")
    channels, conversion = _DECODE[encoding]
    if height <= 0 or width <= 0:
        raise ImageError(f"image is {width}x{height} (width x height); expected both positive")
    if step < width * channels:
        raise ImageError(f"image step {step} is shorter than a {encoding} row: width {width} x "
                         f"{channels} bytes = {width * channels}")
    flat = _as_bytes_array(data)
    if flat.size != step * height:
        raise ImageError(f"image data has {flat.size} bytes; expected step {step} x height {height} "
                         f"= {step * height} for {width}x{height} {encoding}")
    pixels = flat.reshape(height, step)[:, :width * channels].reshape(height, width, channels)
    if conversion is None:
        return pixels.copy()
    return cv2.cvtColor(pixels, conversion)


def decode_image_msg(msg):
    """Decodes any object with sensor_msgs/Image fields (rclpy or rosbags) into BGR uint8."""
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                        getattr(msg, "is_bigendian", 0))


def decode_compressed(format, data):  # noqa: A002 (the field's name in sensor_msgs/CompressedImage)
    """Decodes the fields of a sensor_msgs/CompressedImage (JPEG or PNG) into BGR uint8.

    The bytes decide the codec; ``format`` ("jpeg", "png" or image_transport's "rgb8; jpeg compressed
    bgr8") is only checked for depth images, which are not camera frames.
    """
    if "compresseddepth" in format.lower():
        raise ImageError(f"compressed format {format!r} is a depth image; expected jpeg or png")
    flat = _as_bytes_array(data)
    if flat.size == 0:
        raise ImageError(f"compressed image ({format!r}) has no data")
    image = cv2.imdecode(flat, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"compressed image ({format!r}, {flat.size} bytes) cannot be decoded; "
                         "expected JPEG or PNG data")
    return image


def decode_compressed_msg(msg):
    """Decodes any object with sensor_msgs/CompressedImage fields into BGR uint8."""
    return decode_compressed(msg.format, msg.data)


def _check_array(image, channels, what):
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        given = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageError(f"{what} must be a uint8 array; got {given}")
    if channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    expected = (2,) if channels == 1 else (3,)
    if image.ndim not in expected or (channels > 1 and image.shape[2] != channels) or 0 in image.shape:
        shape = "HxW" if channels == 1 else f"HxWx{channels}"
        raise ImageError(f"{what} has shape {image.shape}; expected a non-empty {shape} array")
    return image


def encode_image(image, encoding):
    """The fields of a sensor_msgs/Image for ``image``: BGR (HxWx3) for rgb8/bgr8, HxW for mono8.

    ``data`` is ``bytes``: rclpy fills ``msg.data`` from bytes about 100x faster than from an ndarray.
    """
    if encoding not in _ENCODE:
        raise ImageError(f"cannot encode to {encoding!r}; expected one of {', '.join(ENCODABLE_ENCODINGS)}")
    channels, conversion = _ENCODE[encoding]
    image = _check_array(image, channels, f"a {encoding} image")
    if conversion is not None:
        image = cv2.cvtColor(image, conversion)
    height, width = image.shape[:2]
    return dict(height=height, width=width, encoding=encoding, is_bigendian=0, step=width * channels,
                data=np.ascontiguousarray(image).tobytes())


def encode_compressed(image_bgr, fmt="jpeg", quality=95):
    """The fields of a sensor_msgs/CompressedImage for a BGR image: ``dict(format=, data=bytes)``.

    :param quality: JPEG quality (image_transport's default, 95); ignored for PNG.
    """
    if fmt not in _COMPRESSED:
        raise ImageError(f"compressed format {fmt!r} is not supported; expected jpeg or png")
    image_bgr = _check_array(image_bgr, 3, "a BGR image")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode(_COMPRESSED[fmt], image_bgr, params)
    if not ok:
        raise ImageError(f"cannot encode a {image_bgr.shape} image as {fmt}")
    return dict(format=fmt, data=encoded.tobytes())
