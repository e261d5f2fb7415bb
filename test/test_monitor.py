# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The graph's direct gather equals the reference's materialise-upsample-concatenate-index, for every layer type."""

import numpy as np
import torch
import torch.nn.functional as F

from daain_ros.detector.monitor import ActivationMonitor, gather_samples, leaf_layers, probe_layers
from daain_ros.detector.pointwise import is_pointwise
from daain_ros.detector.sampling_key import SamplingKey
from daain_ros.segmentation.espnet import ESPNet, SegmentationModel


def _tiny_model():
    torch.manual_seed(0)
    net = ESPNet(p=1, q=1).eval()
    return SegmentationModel(net, None, "0" * 64, 1, 1, True)


def _materialised(model, names, x):
    """The reference's path: every hooked map upsampled (nearest) to the input size, concatenated."""
    outputs = {}
    modules = dict(model.net.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o)) for n in names]
    with torch.inference_mode():
        model.logits(x)
    for h in handles:
        h.remove()
    return torch.cat([F.interpolate(outputs[n], size=x.shape[-2:], mode="nearest") for n in names], 1)


def test_gather_equals_materialise_then_index_for_every_layer_type():
    model = _tiny_model()
    size = (64, 32)
    layers = probe_layers(model, size)
    types = {type(dict(model.net.named_modules())[layer.name]).__name__ for layer in layers}
    assert {"Conv2d", "BatchNorm2d", "PReLU", "AvgPool2d", "ConvTranspose2d"} <= types
    key = SamplingKey.generate(layers, size, seed=1, radius=10.0)
    assert len({g.name for g in key.layer_gathers()}) == len(layers)
    x = torch.randn(2, 3, size[1], size[0])
    monitor = ActivationMonitor(model, key)
    for layout in (torch.contiguous_format, torch.channels_last):  # channels-last is read through a view
        x = x.contiguous(memory_format=layout)
        full = _materialised(model, [layer.name for layer in layers], x)
        expected = full[:, key.indices[:, 0], key.indices[:, 1], key.indices[:, 2]]
        with torch.inference_mode():
            logits, gathered = monitor(x)
        torch.testing.assert_close(gathered, expected, rtol=0, atol=0)
    assert logits.shape == (2, 20, size[1], size[0])


def test_every_leaf_is_gathered_by_default_without_a_hook_on_the_model():
    model = _tiny_model()
    layers = probe_layers(model, (64, 32))
    assert sorted(layer.name for layer in layers) == sorted(leaf_layers(model.net))
    key = SamplingKey.generate(layers, (64, 32), seed=2, radius=8.0)
    monitor = ActivationMonitor(model, key)
    sources = [node.args[0] for node in monitor.network.graph.find_nodes(op="call_function", target=gather_samples)]
    modules = dict(model.net.named_modules())
    read_layers = [node.target for node in sources if node.op == "call_module"]
    sampled = [gather.name for gather in key.layer_gathers()]
    # each map is read once: a BatchNorm's and a PReLU's samples come from their input's read (a layer, or a
    # cat or sum), the first test checks their values
    assert read_layers == [name for name in sampled if not is_pointwise(modules[name])]
    assert {node.op for node in sources} == {"call_module", "call_function"}
    assert len(set(sources)) == len(sources) < len(sampled)
    assert all(not m._forward_hooks for m in model.net.modules())


def test_layer_selection(p2q8):
    layers = probe_layers(p2q8, (512, 256), ["encoder.level1.act", "encoder.b3.act"])
    assert [(layer.name, layer.channels, layer.height, layer.width) for layer in layers] == [
        ("encoder.level1.act", 16, 128, 256), ("encoder.b3.act", 256, 32, 64)]
    assert sum(layer.channels for layer in probe_layers(p2q8, (512, 256))) == 5526
    np.testing.assert_equal(len(leaf_layers(p2q8.net)), 129)
