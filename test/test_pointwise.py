# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""BatchNorm and PReLU samples computed from their input's samples equal the layers' own outputs, in any chain."""

import pytest
import torch
from torch import nn

from daain_ros.detector.monitor import ActivationMonitor, gather_samples, probe_layers
from daain_ros.detector.pointwise import channel_stages, is_pointwise
from daain_ros.detector.sampling_key import SamplingKey
from daain_ros.segmentation.espnet import SegmentationModel

SIZE = (32, 16)


class _Chains(nn.Module):
    """conv, BN, PReLU per channel, PReLU shared, BN (three stages), and a BN after a sum."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1, self.act1, self.act2, self.bn2 = nn.BatchNorm2d(6), nn.PReLU(6), nn.PReLU(), nn.BatchNorm2d(6)
        self.bn3 = nn.BatchNorm2d(6, affine=False)
        self.head = nn.Conv2d(6, 4, 1)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2, self.bn3):
                bn.running_mean.normal_(generator=generator)
                bn.running_var.uniform_(0.1, 3, generator=generator)
                if bn.affine:
                    bn.weight.normal_(generator=generator)
                    bn.bias.normal_(generator=generator)
            self.act1.weight.uniform_(-2, 2, generator=generator)  # negative and > 1 slopes too
            self.act2.weight.fill_(0.3)

    def forward(self, x):
        y = self.conv(x)
        z = self.bn2(self.act2(self.act1(self.bn1(y))))
        return self.head(self.bn3(z + y))


def _model(net):
    return SegmentationModel(net.eval(), None, "0" * 64, 1, 1, True)


def _outputs(net, x):
    outputs, handles = {}, []
    for name, module in net.named_children():
        handles.append(module.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o)))
    net(x)
    for handle in handles:
        handle.remove()
    return outputs


def test_samples_of_bn_and_prelu_chains_equal_the_layers_outputs():
    net = _Chains()
    model = _model(net)
    layers = probe_layers(model, SIZE)
    key = SamplingKey.generate(layers, SIZE, seed=3, radius=3.0)
    monitor = ActivationMonitor(model, key)
    x = torch.randn(2, 3, SIZE[1], SIZE[0], generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        outputs = _outputs(net, x)
        _, samples = monitor(x)
    expected = torch.cat([gather_samples(outputs[gather.name], torch.as_tensor(gather.flat_indices),
                                         torch.as_tensor(gather.nhwc_indices)) for gather in key.layer_gathers()], 1)
    assert {gather.name for gather in key.layer_gathers()} == {"conv", "bn1", "act1", "act2", "bn2", "bn3", "head"}
    torch.testing.assert_close(samples, expected, rtol=1e-6, atol=1e-6)
    reads = monitor.network.graph.find_nodes(op="call_function", target=gather_samples)
    sources = {node.args[0].name for node in reads}
    assert sources == {"conv", "add", "head"}  # the chain after conv, and bn3 from the sum it normalises


def test_three_stages_for_a_prelu_after_a_prelu_then_a_bn():
    net = _Chains()
    stages = channel_stages([net.bn1, net.act1, net.act2, net.bn2], 6)
    assert len(stages) == 3
    alpha, beta, slope = stages[1]
    assert torch.all(alpha == 1) and torch.all(beta == 0) and torch.all(slope == 0.3)


def test_a_batchnorm_in_training_mode_is_read_from_its_own_output():
    net = _Chains()
    assert is_pointwise(net.eval().bn1) and is_pointwise(net.act2)
    assert not is_pointwise(net.train().bn1) and not is_pointwise(nn.BatchNorm2d(4, track_running_stats=False).eval())
    assert not is_pointwise(net.conv)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gradients_through_derived_samples_equal_those_through_the_layers(layout):
    net = _Chains()
    model = _model(net)
    key = SamplingKey.generate(probe_layers(model, SIZE), SIZE, seed=4, radius=3.0)
    monitor = ActivationMonitor(model, key)
    x = torch.randn(1, 3, SIZE[1], SIZE[0], generator=torch.Generator().manual_seed(2)).contiguous(
        memory_format=layout).requires_grad_(True)
    weights = torch.randn(key.dims, generator=torch.Generator().manual_seed(3))
    (monitor(x)[1] @ weights).sum().backward()
    derived = x.grad.clone()
    x.grad = None
    outputs = _outputs(net, x)
    expected = torch.cat([gather_samples(outputs[gather.name], torch.as_tensor(gather.flat_indices),
                                         torch.as_tensor(gather.nhwc_indices)) for gather in key.layer_gathers()], 1)
    (expected @ weights).sum().backward()
    torch.testing.assert_close(derived, x.grad, rtol=1e-5, atol=1e-6)
