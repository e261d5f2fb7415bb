# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""ESPNet against the official checkpoints and the official implementation's reference outputs."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from daain_ros.errors import CheckpointError, ImageError
from daain_ros.segmentation.cityscapes import ROAD
from daain_ros.segmentation.espnet import ESPNet, ESPNetEncoder, file_sha256, load_espnet, save_espnet
from daain_ros.segmentation.network_size import check_network_size
from daain_ros.segmentation.preprocess import MEAN_BGR, STD_BGR, preprocess

OFFICIAL = ["espnet_p_2_q_3.pth", "espnet_p_2_q_5.pth", "espnet_p_2_q_8.pth", "espnet_c_p_2_q_8.pth"]


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_checkpoints_load_strictly_with_their_shapes(espnet_dir, name):
    model = load_espnet(espnet_dir / name)
    expected_q = int(name.split("_q_")[1][0])
    assert (model.p, model.q, model.full) == (2, expected_q, not name.startswith("espnet_c"))
    assert model.name == name and not model.net.training
    x = preprocess([np.zeros((256, 512, 3), np.uint8)], (512, 256))
    with torch.inference_mode():
        out = model.net(x)
        assert model.logits(x).shape == (1, 20, 256, 512)
    assert out.shape == ((1, 20, 256, 512) if model.full else (1, 20, 32, 64))
    assert len(list(model.net.modules())) > 100


@pytest.mark.parametrize("size", [(1024, 512), (512, 256)])
def test_labels_match_official_reference(p2q8, drive_frames, espnet_dir, size):
    reference = cv2.imread(str(espnet_dir / "reference" / f"solidWhiteRight_frame000_p2q8_{size[0]}x{size[1]}.png"),
                           cv2.IMREAD_UNCHANGED)
    with torch.inference_mode():
        labels = p2q8.net(preprocess([drive_frames[0]], size)).argmax(1)[0].numpy()
    assert (labels == reference).mean() >= 0.995


def test_preprocessing_equals_official_normalise_then_resize(drive_frames):
    frame = drive_frames[10]
    official = (frame.astype(np.float32) - np.float32(MEAN_BGR)) / np.float32(STD_BGR)
    official = cv2.resize(official, (512, 256)) / 255
    ours = preprocess([frame], (512, 256))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, official, atol=1e-6)


def test_road_is_majority_in_lower_middle_of_freeway_frame(p2q8, drive_frames):
    with torch.inference_mode():
        labels = p2q8.net(preprocess([drive_frames[0]], (512, 256))).argmax(1)[0].numpy()
    lower_middle = labels[200:256, 192:320]
    assert np.bincount(lower_middle.ravel(), minlength=20).argmax() == ROAD


def test_unknown_and_corrupt_checkpoints_are_refused(tmp_path, espnet_dir):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_espnet(tmp_path / "missing.pth")
    truncated = tmp_path / "espnet_p_2_q_8.pth"
    truncated.write_bytes((espnet_dir / "espnet_p_2_q_8.pth").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="is not the official espnet_p_2_q_8.pth"):
        load_espnet(truncated)
    garbage = tmp_path / "mine.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_espnet(garbage)
    other = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(CheckpointError, match="not an ESPNet state dict"):
        load_espnet(other)
    state = torch.load(espnet_dir / "espnet_p_2_q_8.pth", map_location="cpu", weights_only=True)
    state["conv.conv.weight"] = torch.zeros(20, 39, 3, 3)  # the CamVid decoder variant's shape
    wrong = tmp_path / "camvid_like.pth"
    torch.save(state, wrong)
    with pytest.raises(CheckpointError, match="does not fit ESPNet p=2 q=8 strictly"):
        load_espnet(wrong)


def test_safetensors_round_trip(tmp_path):
    torch.manual_seed(0)
    net = ESPNet(p=1, q=1).eval()
    path = tmp_path / "tiny.safetensors"
    save_espnet(net, path, 1, 1)
    model = load_espnet(path)
    x = torch.randn(1, 3, 32, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model.net(x), net(x))
    assert model.sha256 == file_sha256(path) and (model.p, model.q) == (1, 1)


def test_encoder_alone_is_espnet_c():
    assert isinstance(ESPNet().encoder, ESPNetEncoder)


def test_network_size_must_be_multiple_of_eight():
    assert check_network_size(640, 480) == (640, 480)
    with pytest.raises(ImageError, match="multiples of 8"):
        check_network_size(960, 540)


def test_segment_cli_writes_train_ids_and_refuses_bad_checkpoints(tmp_path, espnet_dir, footage_dir):
    still = footage_dir / "udacity_p1" / "solidWhiteRight.jpg"
    cmd = [sys.executable, "-m", "daain_ros.cli.main", "segment", "--model", str(espnet_dir / "espnet_p_2_q_3.pth"),
           str(still), "--out", str(tmp_path / "seg"), "--color"]
    subprocess.run(cmd, check=True, capture_output=True)
    labels = cv2.imread(str(tmp_path / "seg" / "solidWhiteRight.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (256, 512) and labels.dtype == np.uint8 and labels.max() <= 19
    assert cv2.imread(str(tmp_path / "seg" / "solidWhiteRight_color.png")).shape == (256, 512, 3)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\0" * 64)
    cmd[cmd.index("--model") + 1] = str(bad)
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "bad.pth" in result.stderr and "Traceback" not in result.stderr
