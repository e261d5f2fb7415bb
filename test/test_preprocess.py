# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The two places preprocessing runs: OpenCV on the host for a CPU, uint8 upload then torch on an accelerator."""

import numpy as np
import pytest
import torch

from daain_ros.errors import ImageError
from daain_ros.segmentation.preprocess import normalize, preprocess, to_pixels, unit_on_device, upload

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def camera_frames():
    """Three seeded 540x960 BGR frames (the footage's camera size) and a grey one."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (540, 960, 3), np.uint8) for _ in range(3)]
    return frames + [frames[0][:, :, 1].copy()]


@pytest.mark.parametrize("size", [(512, 256), (1024, 512), (960, 544)])
@pytest.mark.parametrize("pick", [[0], [0, 1, 2], [3], [0, 3]], ids=["one", "batch", "grey", "colour+grey"])
def test_device_path_gives_the_host_path_floats(camera_frames, size, pick):
    """Downscales agree to the bit; 540 -> 544 rows upscales, where the two kernels round differently."""
    images = [camera_frames[i] for i in pick]
    host = preprocess(images, size)
    device = normalize(unit_on_device(images, size, "cpu"))
    assert device.shape == host.shape == (len(images), 3, size[1], size[0])
    torch.testing.assert_close(device, host, atol=0 if size[1] < 540 else 1e-6, rtol=0)
    assert device.is_contiguous(memory_format=torch.channels_last) == host.is_contiguous(
        memory_format=torch.channels_last)


def test_frames_of_mixed_sizes_are_resized_one_by_one(camera_frames):
    images = [camera_frames[0], np.ascontiguousarray(camera_frames[1][:300, :700])]
    torch.testing.assert_close(normalize(unit_on_device(images, (512, 256), "cpu")), preprocess(images, (512, 256)),
                               atol=0, rtol=0)


def test_network_input_maps_back_to_the_pixels(camera_frames):
    pixels = upload(camera_frames[:2], "cpu").permute(0, 3, 1, 2).float()
    assert torch.equal(to_pixels(normalize(pixels / 255)).round(), pixels)


def test_upload_sends_the_uint8_bytes(camera_frames):
    batch = upload(camera_frames[:2], "cpu")
    assert batch.dtype == torch.uint8 and batch.shape == (2, 540, 960, 3)
    assert upload([camera_frames[3]], "cpu").shape == (1, 540, 960, 3)


@pytest.mark.parametrize("image, message", [
    (np.zeros((4, 8, 3), np.float32), "dtype float32: expected uint8"),
    (np.zeros((4, 8, 4), np.uint8), r"shape \(4, 8, 4\): expected HxWx3 BGR or HxW grey"),
    (np.zeros((0, 8, 3), np.uint8), r"shape \(0, 8, 3\)"),
])
def test_both_paths_refuse_the_same_images(image, message):
    with pytest.raises(ImageError, match=message):
        preprocess([image], (512, 256))
    with pytest.raises(ImageError, match=message):
        unit_on_device([image], (512, 256), "cpu")


@CUDA
def test_cuda_preprocessing_matches_the_host(camera_frames):
    images = camera_frames[:2] + [camera_frames[3]]
    on_cuda = preprocess(images, (1024, 512), torch.device("cuda"))
    assert on_cuda.device.type == "cuda"
    torch.testing.assert_close(on_cuda.cpu(), preprocess(images, (1024, 512)), atol=1e-5, rtol=0)
