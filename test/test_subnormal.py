# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Subnormal floats never reach the CPU kernels: zeroed when a checkpoint loads, flushed when computed."""

import copy

import pytest
import torch

from daain_ros.detector.monitor import leaf_layers
from daain_ros.segmentation.espnet import OFFICIAL_SHA256, ESPNet, file_sha256, load_espnet, save_espnet
from daain_ros.segmentation.preprocess import preprocess
from daain_ros.segmentation.subnormal import flush_denormals, flushing, subnormal_mask, zero_subnormals

#: Counted in the official p2q8 file (18,302 of its 368,341 floats).
P2Q8_SUBNORMALS = 18302


def plant_subnormals(net, share=0.05, seed=0):
    """Sets ``share`` of every parameter to random subnormal bit patterns; returns how many."""
    generator = torch.Generator().manual_seed(seed)
    planted = 0
    with torch.no_grad():
        for param in net.parameters():
            pick = torch.rand(param.shape, generator=generator) < share
            count = int(pick.sum())
            mantissas = torch.randint(1, 1 << 23, (count,), generator=generator, dtype=torch.int32)
            param.view(torch.int32)[pick] = mantissas  # bits, not arithmetic: flushing would zero them
            planted += count
    return planted


def count_subnormals(tensors):
    return sum(int(subnormal_mask(t).sum()) for t in tensors if t.is_floating_point())


def test_mask_reads_bits_of_every_float_width():
    for dtype, int_dtype in ((torch.float16, torch.int16), (torch.bfloat16, torch.int16),
                             (torch.float32, torch.int32), (torch.float64, torch.int64)):
        values = torch.tensor([0.0, -0.0, 1.0, torch.finfo(dtype).tiny, -2.5, 0.0, 0.0], dtype=dtype)
        bits = values.view(int_dtype)
        bits[5] = 1                          # the smallest positive subnormal
        bits[6] = torch.iinfo(int_dtype).min + 3  # a negative subnormal: sign bit and a small mantissa
        assert subnormal_mask(values).tolist() == [False] * 5 + [True, True], dtype


def test_zero_subnormals_counts_and_zeroes_only_them():
    net = ESPNet(p=1, q=1)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    plant = copy.deepcopy(net)
    planted = plant_subnormals(plant)
    planted_state = plant.state_dict()
    assert zero_subnormals(planted_state) == planted > 0
    assert count_subnormals(planted_state.values()) == 0
    for name, value in planted_state.items():
        changed = value != state[name]
        assert (value[changed] == 0).all(), name  # every other value is untouched


def test_loading_zeroes_planted_weights_and_keeps_the_file_sha256(tmp_path):
    net = ESPNet(p=1, q=1)
    planted = plant_subnormals(net)
    path = tmp_path / "planted.safetensors"
    save_espnet(net, path, 1, 1)
    model = load_espnet(path)
    assert model.subnormals_zeroed == planted
    assert model.sha256 == file_sha256(path)
    assert model.describe()["subnormals_zeroed"] == planted
    assert count_subnormals(model.net.state_dict().values()) == 0


@pytest.mark.slow
def test_official_checkpoint_loads_without_subnormal_parameters(p2q8, espnet_dir):
    raw = torch.load(espnet_dir / "espnet_p_2_q_8.pth", map_location="cpu", weights_only=True)
    assert count_subnormals(raw.values()) == P2Q8_SUBNORMALS
    assert p2q8.subnormals_zeroed == P2Q8_SUBNORMALS
    assert OFFICIAL_SHA256[p2q8.sha256] == "espnet_p_2_q_8.pth"
    assert count_subnormals(p2q8.net.state_dict().values()) == 0


@pytest.mark.slow
def test_real_frame_leaves_no_subnormal_activation_in_any_hooked_layer(p2q8, drive_frames):
    counts, handles = {}, []
    modules = dict(p2q8.net.named_modules())

    def hook(name):
        def record(_module, _inputs, output):
            counts[name] = count_subnormals([output])
        return record

    for name in leaf_layers(p2q8.net):
        handles.append(modules[name].register_forward_hook(hook(name)))
    try:
        with torch.inference_mode():
            for frame in (drive_frames[0], drive_frames[150]):
                p2q8.logits(preprocess([frame], (512, 256), torch.device("cpu")))
                assert len(counts) == len(leaf_layers(p2q8.net))
                assert {name: n for name, n in counts.items() if n} == {}
    finally:
        for handle in handles:
            handle.remove()


def test_subnormal_operands_count_as_zero_in_every_intra_op_thread():
    """What cost Intel cores 27x is a microcode assist per subnormal operand; flushed, there is no such operand.

    A convolution whose weights are all subnormal, on torch's whole intra-op pool, gives exactly zero: each of
    its threads treats them as zero. Without flushing (or in threads started before it) the sums are about
    1e-36, normal numbers made of subnormal products.
    """
    if not flush_denormals():
        pytest.skip("torch.set_flush_denormal is not supported on this CPU (x86 with SSE3 only)")
    assert flushing()
    conv = torch.nn.Conv2d(16, 8, 3, bias=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        conv.weight.view(torch.int32).copy_(
            torch.randint(1, 1 << 23, conv.weight.shape, generator=generator, dtype=torch.int32))
    assert count_subnormals([conv.weight]) == conv.weight.numel()
    with torch.inference_mode():
        out = conv(torch.ones(4, 16, 64, 64))
    assert out.abs().max().item() == 0.0
