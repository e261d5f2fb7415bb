# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The ROS-free image codec: round trips for each encoding, row padding, every malformed message."""

import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from daain_ros.errors import ImageError
from daain_ros.io.image_codec import (decode_compressed, decode_compressed_msg, decode_image, decode_image_msg,
                                      encode_compressed, encode_image)

BUFFER_KINDS = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "array.array": lambda b: array.array("B", b),
    "ndarray": lambda b: np.frombuffer(b, np.uint8),
}


@pytest.fixture
def bgr():
    return np.random.default_rng(0).integers(0, 256, (7, 11, 3), dtype=np.uint8)


def _decode(fields):
    return decode_image(fields["encoding"], fields["height"], fields["width"], fields["step"],
                        fields["data"], fields["is_bigendian"])


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_colour_round_trip_from_every_buffer_kind(bgr, encoding, kind):
    fields = encode_image(bgr, encoding)
    assert fields["step"] == 33 and isinstance(fields["data"], bytes)
    fields["data"] = BUFFER_KINDS[kind](fields["data"])
    decoded = _decode(fields)
    np.testing.assert_array_equal(decoded, bgr)
    assert decoded.flags.writeable and decoded.flags.c_contiguous


def test_rgb8_is_rgb_on_the_wire(bgr):
    fields = encode_image(bgr, "rgb8")
    wire = np.frombuffer(fields["data"], np.uint8).reshape(7, 11, 3)
    np.testing.assert_array_equal(wire, bgr[..., ::-1])


def test_mono8_round_trip_gives_grey_bgr():
    grey = np.arange(77, dtype=np.uint8).reshape(7, 11)
    fields = encode_image(grey, "mono8")
    assert (fields["height"], fields["width"], fields["step"]) == (7, 11, 11)
    np.testing.assert_array_equal(_decode(fields), np.repeat(grey[..., None], 3, axis=2))
    np.testing.assert_array_equal(encode_image(grey[..., None], "mono8")["data"], fields["data"])


@pytest.mark.parametrize("encoding,order", [("rgba8", [2, 1, 0]), ("bgra8", [0, 1, 2])])
def test_four_channel_encodings_drop_alpha(bgr, encoding, order):
    pixels = np.concatenate([bgr[..., order], np.full((7, 11, 1), 9, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_image(encoding, 7, 11, 44, pixels.tobytes()), bgr)


@pytest.mark.parametrize("encoding,channels", [("rgb8", 3), ("bgr8", 3), ("mono8", 1), ("rgba8", 4)])
def test_padded_rows(bgr, encoding, channels):
    width_bytes = 11 * channels
    rows = np.full((7, width_bytes + 5), 255, np.uint8)
    if encoding == "mono8":
        rows[:, :width_bytes] = bgr[..., 0]
        expected = np.repeat(bgr[..., :1], 3, axis=2)
    else:
        pixels = bgr[..., ::-1] if encoding.startswith("rgb") else bgr
        if channels == 4:
            pixels = np.concatenate([pixels, np.zeros((7, 11, 1), np.uint8)], axis=2)
        rows[:, :width_bytes] = pixels.reshape(7, -1)
        expected = bgr
    np.testing.assert_array_equal(decode_image(encoding, 7, 11, width_bytes + 5, rows.tobytes()), expected)


def test_decode_image_msg_reads_message_fields(bgr):
    msg = SimpleNamespace(**encode_image(bgr, "rgb8"))
    msg.data = array.array("B", msg.data)  # what rclpy hands a callback
    np.testing.assert_array_equal(decode_image_msg(msg), bgr)


@pytest.mark.parametrize("args,message", [
    (("yuv422", 7, 11, 33, bytes(231)), "encoding 'yuv422' is not supported"),
    (("8UC3", 7, 11, 33, bytes(231)), "expected one of bgr8, bgra8, mono8, rgb8, rgba8"),
    (("rgb8", 0, 0, 0, b""), "0x0"),
    (("rgb8", 7, 0, 33, bytes(231)), "expected both positive"),
    (("rgb8", 7, 11, 32, bytes(224)), "step 32 is shorter than a rgb8 row: width 11 x 3 bytes = 33"),
    (("rgb8", 7, 11, 33, b""), "data has 0 bytes; expected step 33 x height 7 = 231"),
    (("rgb8", 7, 11, 33, bytes(230)), "data has 230 bytes; expected step 33 x height 7 = 231"),
    (("rgb8", 7, 11, 33, bytes(232)), "data has 232 bytes"),
    (("mono8", 7, 11, 11, np.zeros(77, np.float32)), "dtype float32; expected uint8"),
    (("mono8", 7, 11, 11, 12345), "int is not a byte buffer"),
])
def test_malformed_images_raise_what_was_given_and_expected(args, message):
    with pytest.raises(ImageError, match=message.replace("(", r"\(")):
        decode_image(*args)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip(fmt):
    y, x = np.mgrid[0:32, 0:48]
    smooth = np.stack([x * 5, y * 7, (x + y) * 3], axis=2).astype(np.uint8)
    fields = encode_compressed(smooth, fmt)
    assert fields["format"] == fmt and isinstance(fields["data"], bytes)
    decoded = decode_compressed_msg(SimpleNamespace(**fields))
    assert decoded.shape == smooth.shape and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(int) - smooth).max()
    assert error == 0 if fmt == "png" else error <= 8


def test_compressed_decodes_image_transport_format_and_array_data():
    image = np.full((8, 8, 3), (10, 120, 240), np.uint8)
    data = array.array("B", encode_compressed(image, "png")["data"])
    np.testing.assert_array_equal(decode_compressed("rgb8; png compressed bgr8", data), image)


def test_compressed_mono_png_becomes_bgr():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ok, png = cv2.imencode(".png", grey)
    assert ok
    np.testing.assert_array_equal(decode_compressed("png", png.tobytes()), np.repeat(grey[..., None], 3, 2))


@pytest.mark.parametrize("fmt,data,message", [
    ("jpeg", b"", "has no data"),
    ("jpeg", b"not a jpeg at all", r"\('jpeg', 17 bytes\) cannot be decoded"),
    ("png", encode_compressed(np.zeros((16, 16, 3), np.uint8), "png")["data"][:40], "cannot be decoded"),
    ("16UC1; compressedDepth", b"\x00" * 20, "is a depth image"),
])
def test_bad_compressed_bytes(fmt, data, message):
    with pytest.raises(ImageError, match=message):
        decode_compressed(fmt, data)


@pytest.mark.parametrize("image,encoding,message", [
    (np.zeros((4, 4, 3), np.uint8), "rgba8", "cannot encode to 'rgba8'"),
    (np.zeros((4, 4), np.uint8), "rgb8", r"shape \(4, 4\); expected a non-empty HxWx3"),
    (np.zeros((4, 4, 3), np.uint8), "mono8", "expected a non-empty HxW array"),
    (np.zeros((0, 4, 3), np.uint8), "bgr8", "non-empty"),
    (np.zeros((4, 4, 3), np.float32), "bgr8", "uint8 array; got float32"),
    ([[1, 2], [3, 4]], "mono8", "uint8 array; got list"),
])
def test_encode_rejects_what_it_cannot_encode(image, encoding, message):
    with pytest.raises(ImageError, match=message):
        encode_image(image, encoding)


def test_encode_compressed_rejects_unknown_format():
    with pytest.raises(ImageError, match="'tiff' is not supported"):
        encode_compressed(np.zeros((4, 4, 3), np.uint8), "tiff")
