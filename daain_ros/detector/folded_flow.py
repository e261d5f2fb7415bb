# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The trained flow's negative log-likelihood with what depends on the parameters alone computed once.

FrEIA's ``AllInOneBlock`` recomputes per frame what only its parameters decide: the global scale
(``0.1 * softplus``) and its log-determinant, the coupling's scaling by 0.1, and the Python bookkeeping
of its tuple interface, which ``torch.fx`` traces into the graph as operators. Folded once, a block is
ten operators (two ``addmm``, ``relu``, ``tanh``, ``mul``, ``exp``, two ``addcmul``, ``cat``, the
permutation's gather) and the log-determinants are summed once at the end. Each operator costs a
dispatch of a few microseconds on a CPU after ESPNet has evicted the caches, and a kernel launch on a GPU;
``daain bench`` measures what the graph costs.

Same arithmetic up to float32 rounding (within 1e-5 relative of :func:`negative_log_likelihood`; tested).
It is a snapshot: made from a trained flow, it does not follow later changes to that flow's parameters.
"""

import math

import torch
from torch import nn

from daain_ros.detector.flow import IndexPermutedBlock
from daain_ros.errors import DaainError

#: FrEIA scales the whole coupling output by this for stability (``AllInOneBlock._affine``).
COUPLING_SCALE = 0.1


class FoldedFlow(nn.Module):
    """x -> (negative log-likelihood per dimension, latent z), as :func:`negative_log_likelihood` of ``flow``."""

    def __init__(self, flow):
        super().__init__()
        self.splits, self.clamps, log_scale = [], [], 0.0
        for i, block in enumerate(flow.module_list):
            _check(block)
            first, last = block.subnet[0], block.subnet[-1]
            with torch.no_grad():
                scale = block.global_scale_activation(block.global_scale).reshape(-1)
                log_scale += float(torch.log(scale).sum())
                for name, value in (("w1", first.weight.t()), ("b1", first.bias),
                                    ("w2", COUPLING_SCALE * last.weight.t()), ("b2", COUPLING_SCALE * last.bias),
                                    ("scale", scale), ("offset", block.global_offset.reshape(-1)),
                                    ("perm", block.perm_index)):
                    self.register_buffer(f"{name}_{i}", value.detach().clone(memory_format=torch.contiguous_format))
            self.splits.append(tuple(block.splits))
            self.clamps.append(float(block.clamp))
        self.dims = sum(self.splits[0])
        self.constant = 0.5 * self.dims * math.log(2 * math.pi) - log_scale

    def forward(self, x):
        scalings = []
        for i, (passive, active) in enumerate(self.splits):
            def part(name, i=i):
                return getattr(self, f"{name}_{i}")

            x1, x2 = x[:, :passive], x[:, passive:]
            hidden = torch.relu(torch.addmm(part("b1"), x1, part("w1")))
            coupling = torch.addmm(part("b2"), hidden, part("w2"))
            log_scaling = self.clamps[i] * torch.tanh(coupling[:, :active])
            scalings.append(log_scaling)
            y = torch.cat((x1, torch.addcmul(coupling[:, active:], x2, torch.exp(log_scaling))), 1)
            x = torch.addcmul(part("offset"), y, part("scale")).index_select(1, part("perm"))
        nll = 0.5 * (x ** 2).sum(1) - torch.cat(scalings, 1).sum(1) + self.constant
        return nll / self.dims, x


def _check(block):
    """Only what :func:`~daain_ros.detector.flow.build_flow` makes is folded; anything else is an error."""
    if not isinstance(block, IndexPermutedBlock) or block.GIN or block.householder or block.conditional \
            or block.reverse_pre_permute or not isinstance(block.subnet, nn.Sequential):
        raise DaainError(f"flow block {type(block).__name__}: expected an unconditional IndexPermutedBlock with "
                         "hard permutations and a Sequential subnet, as build_flow makes")
