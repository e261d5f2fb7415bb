# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Samples of eval-mode BatchNorm and PReLU layers computed from the samples of their input.

Such a layer maps each value to one value at the same channel and position with constants of its own: an
eval-mode BatchNorm ``x * alpha + beta`` per channel, a PReLU ``x`` where positive and ``slope * x``
elsewhere. So its samples are its input's samples at the same positions, passed through the layer. The
monitor's graph (:func:`~daain_ros.detector.monitor.gathered_network`) therefore reads a convolution's
output once for the convolution, its BatchNorm and its PReLU together, and applies the layers to the few
read values: with a key over every leaf layer of ESPNet p2q8, 103 reads of a map per frame instead of 127,
at the cost of two operators on the sampled vector.

The values equal the layers' own outputs up to float32 rounding: alpha and beta are computed as PyTorch's
CPU kernel computes them, and a chain (BatchNorm, then PReLU) is applied in the layers' order. The
constants are copied when the graph is built: a graph does not follow later changes to these layers.
"""

import torch
from torch import fx, nn


def is_pointwise(module):
    """Whether ``module`` maps each value alone, per channel, with constants: a PReLU or an eval-mode BatchNorm."""
    if isinstance(module, nn.PReLU):
        return True
    return (isinstance(module, nn.BatchNorm2d) and not module.training and module.running_mean is not None
            and module.running_var is not None)


def chain_to_source(node, modules):
    """(the node whose samples give ``node``'s, the pointwise modules from there to ``node`` in call order).

    ``node`` itself when it is not a pointwise layer; ``modules`` maps call targets to modules.
    """
    chain = []
    while node.op == "call_module" and is_pointwise(modules[node.target]) and isinstance(node.args[0], fx.Node):
        chain.append(modules[node.target])
        node = node.args[0]
    return node, chain[::-1]


def channel_stages(chain, channels):
    """``chain`` as stages (alpha, beta, slope), each a per-channel tensor: x -> prelu(x * alpha + beta, slope).

    A BatchNorm starts a stage and the PReLU after it joins that stage; a stage with nothing to apply in a
    place has alpha 1, beta 0 or slope 1 there, which leave a float32 value unchanged.
    """
    stages = []
    for module in chain:
        with torch.no_grad():
            if isinstance(module, nn.PReLU):
                if not stages or stages[-1]["slope"] is not None:
                    stages.append({"alpha": None, "beta": None, "slope": None})
                stages[-1]["slope"] = module.weight.detach().float().expand(channels).clone()
            else:
                invstd = torch.sqrt(module.running_var.float() + module.eps).reciprocal()
                alpha = invstd if module.weight is None else invstd * module.weight.detach()
                beta = -module.running_mean * alpha
                if module.bias is not None:
                    beta = module.bias.detach() + beta
                stages.append({"alpha": alpha, "beta": beta, "slope": None})
    ones, zeros = torch.ones(channels), torch.zeros(channels)
    return [(_or(stage["alpha"], ones), _or(stage["beta"], zeros), _or(stage["slope"], ones)) for stage in stages]


def _or(value, default):
    return default if value is None else value.detach().to("cpu", torch.float32)
