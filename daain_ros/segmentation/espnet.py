# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""ESPNet and ESPNet-C, wired so the official Cityscapes checkpoints load with ``strict=True``.

Mehta et al., "ESPNet: Efficient Spatial Pyramid of Dilated Convolutions for Semantic Segmentation", ECCV 2018.

Parameter names follow the official state dicts (``encoder.level2.0.d4.conv.weight`` ...); the decoder is
the variant of the official ``test/Model.py`` (its ``conv`` sees 16 + classes channels). Unlike the
official class, ``ESPNet`` does not shadow ``nn.Module.modules``, so hooks and ``model.modules()`` work.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from daain_ros.errors import CheckpointError
from daain_ros.segmentation.subnormal import zero_subnormals

log = logging.getLogger(__name__)

BN_EPS = 1e-3
NUM_CLASSES = 20

#: sha256 of the four official Cityscapes files (github.com/sacmehta/ESPNet, commit afe71c38).
OFFICIAL_SHA256 = {
    "836f28a2a31bd4fc8997001ab6b620d1f9b7b274a03b32d9f3a95c17a011b438": "espnet_c_p_2_q_8.pth",
    "8f3eb198fb15e5da7fa8d258d5f0fc4a4213e1124f415f6fc54d2772d585a7fc": "espnet_p_2_q_3.pth",
    "0378be45080ca5edfc416e9ba06b04e74ec5e2ec4baf56597f25a894a8593942": "espnet_p_2_q_5.pth",
    "343b0e77e8545d36113c4f3efbf1ee349256f25c97c9f9d5ddefe45f2f49763e": "espnet_p_2_q_8.pth",
}


class ConvBNPReLU(nn.Module):
    """Convolution, BatchNorm and PReLU (``CBR`` in the official code)."""

    def __init__(self, n_in, n_out, kernel, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
        self.act = nn.PReLU(n_out)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class BNPReLU(nn.Module):
    """BatchNorm and PReLU (``BR`` in the official code)."""

    def __init__(self, n_out):
        super().__init__()
        self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
        self.act = nn.PReLU(n_out)

    def forward(self, x):
        return self.act(self.bn(x))


class Conv(nn.Module):
    """A bias-free, optionally dilated convolution wrapped as ``.conv`` (the official ``C``/``CDilated``)."""

    def __init__(self, n_in, n_out, kernel, stride=1, dilation=1):
        super().__init__()
        padding = (kernel - 1) // 2 * dilation
        self.conv = nn.Conv2d(n_in, n_out, kernel, stride=stride, padding=padding, bias=False,
                              dilation=dilation)

    def forward(self, x):
        return self.conv(x)


class SpatialPyramid(nn.Module):
    """The ESP module: reduce, split into five dilated branches, fuse hierarchically, merge.

    ``stride=2`` with a 3x3 reduction is the official ``DownSamplerB`` (its own BN + PReLU); ``stride=1``
    with a 1x1 reduction is ``DilatedParllelResidualBlockB`` (optional residual, then ``bn`` = BR).
    """

    def __init__(self, n_in, n_out, downsample=False, residual=True):
        super().__init__()
        n = n_out // 5
        n1 = n_out - 4 * n
        self.downsample = downsample
        self.residual = residual and not downsample
        self.c1 = Conv(n_in, n, 3, 2) if downsample else Conv(n_in, n, 1, 1)
        self.d1 = Conv(n, n1, 3, 1, 1)
        self.d2 = Conv(n, n, 3, 1, 2)
        self.d4 = Conv(n, n, 3, 1, 4)
        self.d8 = Conv(n, n, 3, 1, 8)
        self.d16 = Conv(n, n, 3, 1, 16)
        if downsample:
            self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
            self.act = nn.PReLU(n_out)
        else:
            self.bn = BNPReLU(n_out)

    def forward(self, x):
        reduced = self.c1(x)
        add1 = self.d2(reduced)
        add2 = add1 + self.d4(reduced)
        add3 = add2 + self.d8(reduced)
        add4 = add3 + self.d16(reduced)
        merged = torch.cat([self.d1(reduced), add1, add2, add3, add4], 1)
        if self.residual:
            merged = x + merged
        if self.downsample:
            return self.act(self.bn(merged))
        return self.bn(merged)


class InputProjection(nn.Module):
    """Downsamples the image by 2**times with 3x3 average pools, to be concatenated with features."""

    def __init__(self, times):
        super().__init__()
        self.pool = nn.ModuleList(nn.AvgPool2d(3, stride=2, padding=1) for _ in range(times))

    def forward(self, x):
        for pool in self.pool:
            x = pool(x)
        return x


class ESPNetEncoder(nn.Module):
    """ESPNet-C: output logits at 1/8 of the input resolution; ``features`` exposes the skip tensors."""

    def __init__(self, classes=NUM_CLASSES, p=2, q=8):
        super().__init__()
        self.level1 = ConvBNPReLU(3, 16, 3, 2)
        self.sample1 = InputProjection(1)
        self.sample2 = InputProjection(2)
        self.b1 = BNPReLU(16 + 3)
        self.level2_0 = SpatialPyramid(16 + 3, 64, downsample=True)
        self.level2 = nn.ModuleList(SpatialPyramid(64, 64) for _ in range(p))
        self.b2 = BNPReLU(128 + 3)
        self.level3_0 = SpatialPyramid(128 + 3, 128, downsample=True)
        self.level3 = nn.ModuleList(SpatialPyramid(128, 128) for _ in range(q))
        self.b3 = BNPReLU(256)
        self.classifier = Conv(256, classes, 1, 1)

    def features(self, x):
        """Returns (level-1 features, level-2 concatenation, level-3 concatenation)."""
        out0 = self.level1(x)
        out0_cat = self.b1(torch.cat([out0, self.sample1(x)], 1))
        out1_0 = self.level2_0(out0_cat)
        out1 = out1_0
        for block in self.level2:
            out1 = block(out1)
        out1_cat = self.b2(torch.cat([out1, out1_0, self.sample2(x)], 1))
        out2_0 = self.level3_0(out1_cat)
        out2 = out2_0
        for block in self.level3:
            out2 = block(out2)
        out2_cat = self.b3(torch.cat([out2_0, out2], 1))
        return out0, out1_cat, out2_cat

    def forward(self, x):
        return self.classifier(self.features(x)[2])


class ESPNet(nn.Module):
    """ESPNet: ESPNet-C plus the light decoder (reduce-upsample modules); logits at input resolution."""

    def __init__(self, classes=NUM_CLASSES, p=2, q=3):
        super().__init__()
        self.encoder = ESPNetEncoder(classes, p, q)
        self.level3_C = Conv(128 + 3, classes, 1, 1)
        self.br = nn.BatchNorm2d(classes, eps=BN_EPS)
        self.conv = ConvBNPReLU(16 + classes, classes, 3, 1)
        self.up_l3 = nn.Sequential(nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False))
        self.combine_l2_l3 = nn.Sequential(BNPReLU(2 * classes),
                                           SpatialPyramid(2 * classes, classes, residual=False))
        self.up_l2 = nn.Sequential(nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False),
                                   BNPReLU(classes))
        self.classifier = nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False)

    def forward(self, x):
        out0, out1_cat, out2_cat = self.encoder.features(x)
        up3 = self.up_l3(self.br(self.encoder.classifier(out2_cat)))
        up2 = self.up_l2(self.combine_l2_l3(torch.cat([self.level3_C(out1_cat), up3], 1)))
        return self.classifier(self.conv(torch.cat([up2, out0], 1)))


@dataclass(frozen=True)
class SegmentationModel:
    """A loaded ESPNet with where it came from: the sha256 ties detectors to these exact weights."""

    net: nn.Module
    path: Path
    sha256: str
    p: int
    q: int
    full: bool
    subnormals_zeroed: int = 0

    @property
    def name(self):
        return OFFICIAL_SHA256.get(self.sha256, self.path.name)

    @property
    def device(self):
        """The device the network's weights are on."""
        return next(self.net.parameters()).device

    def describe(self):
        """What the model is, for artifacts and reports: the sha256 is the file's, before any zeroing."""
        return {"sha256": self.sha256, "name": self.name, "p": self.p, "q": self.q,
                "subnormals_zeroed": self.subnormals_zeroed}

    def logits(self, x):
        """Class logits at the input resolution (ESPNet-C's 1/8 output is upsampled bilinearly)."""
        out = self.net(x)
        if out.shape[-2:] != x.shape[-2:]:
            out = nn.functional.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def file_sha256(path):
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _architecture(state):
    """Infers (full, p, q, classes) from a state dict's keys, as the official files name them."""
    full = any(k.startswith("encoder.") for k in state)
    prefix = "encoder." if full else ""

    def blocks(level):
        pattern = re.compile(rf"^{re.escape(prefix)}{level}\.(\d+)\.")
        return 1 + max((int(m.group(1)) for k in state if (m := pattern.match(k))), default=-1)

    classifier = state.get(f"{prefix}classifier.conv.weight")
    if classifier is None:
        raise CheckpointError(f"no '{prefix}classifier.conv.weight': not an ESPNet state dict")
    return full, blocks("level2"), blocks("level3"), int(classifier.shape[0])


def _read_state(path):
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def load_espnet(path, device="cpu"):
    """Loads an ESPNet or ESPNet-C checkpoint strictly, in eval mode, on ``device``.

    Accepts the official ``.pth`` files (recognised by sha256) and state dicts of the same layout, as
    ``.pth`` or ``.safetensors`` (the package's own default model). A file named like an official one
    whose sha256 differs is refused: it is corrupt or not what its name claims. Subnormal weights become
    zero (5 % of the official p2q8's; see :mod:`daain_ros.segmentation.subnormal`); the sha256 stays the file's.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    sha = file_sha256(path)
    if path.name in OFFICIAL_SHA256.values() and OFFICIAL_SHA256.get(sha) != path.name:
        raise CheckpointError(f"{path}: sha256 {sha[:12]}... is not the official {path.name}")
    try:
        state = _read_state(path)
    except Exception as exc:  # torch and safetensors raise many types for a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({reason})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    full, p, q, classes = _architecture(state)
    zeroed = zero_subnormals(state)
    if zeroed:
        log.info("%s: %d subnormal weights set to zero (they slow CPU kernels down; outputs unchanged)",
                 path.name, zeroed)
    net = ESPNet(classes, p, q) if full else ESPNetEncoder(classes, p, q)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"{path}: does not fit ESPNet p={p} q={q} strictly ({first})") from exc
    return SegmentationModel(net.to(device).eval(), path, sha, p, q, full, zeroed)


def save_espnet(net, path, p, q):
    """Saves an ESPNet as safetensors with its architecture in the metadata (never pickle)."""
    from safetensors.torch import save_file
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={"architecture": json.dumps({"p": p, "q": q})})
