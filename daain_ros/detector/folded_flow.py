# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The trained flow's negative log-likelihood with what depends on the parameters alone computed once.

FrEIA's ``AllInOneBlock`` recomputes per frame what only its parameters decide: the global scale
(``0.1 * softplus``) and its log-determinant, the coupling's scaling by 0.1, and the Python bookkeeping
of its tuple interface, which ``torch.fx`` traces into the graph as operators. Folded once, a block is
eleven operators (two splits, ``linear``, ``relu``, ``addmm``, ``tanh``, ``mul``, ``exp``, two
``addcmul``, ``cat`` and the permutation's gather); the log-determinants and the squared latent are summed
once at the end (``addmv``, ``vecdot``), and the detector's standardisation is one ``addcmul`` in front.
Each operator costs a dispatch of a few microseconds on a CPU and a kernel launch on a GPU, and a Python
number in an operator costs a conversion on top (2-3 us against about 1 us for the operator on one CPU
thread), so every constant is a tensor. ``daain bench`` measures what the graph costs.

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
    """x -> (negative log-likelihood per dimension, latent z), as :func:`negative_log_likelihood` of ``flow``.

    With a fitted ``standardizer``, x is the raw activations and the standardisation is folded in as one
    ``addcmul``.
    """

    def __init__(self, flow, standardizer=None):
        super().__init__()
        self.splits, log_scale, log_det_weights = [], 0.0, []
        for i, block in enumerate(flow.module_list):
            _check(block)
            first, last = block.subnet[0], block.subnet[-1]
            with torch.no_grad():
                scale = block.global_scale_activation(block.global_scale).reshape(-1)
                log_scale += float(torch.log(scale).sum())
                for name, value in (("w1", first.weight), ("b1", first.bias),
                                    ("w2", COUPLING_SCALE * last.weight.t()), ("b2", COUPLING_SCALE * last.bias),
                                    ("scale", scale), ("offset", block.global_offset.reshape(-1)),
                                    ("perm", block.perm_index)):
                    self.register_buffer(f"{name}_{i}", value.detach().clone(memory_format=torch.contiguous_format))
                self.register_buffer(f"clamp_{i}", torch.tensor([float(block.clamp)]))
            self.splits.append(tuple(block.splits))
            log_det_weights.append(torch.full((block.splits[1],), -float(block.clamp)))
        self.dims = sum(self.splits[0])
        # nll = constant + 0.5 |z|^2 / dims - sum of clamp * tanh / dims
        self.register_buffer("log_det_weights", torch.cat(log_det_weights) / self.dims)
        self.register_buffer("constant", torch.tensor([(0.5 * self.dims * math.log(2 * math.pi) - log_scale)
                                                       / self.dims]))
        self.standardised = standardizer is not None
        if self.standardised:
            with torch.no_grad():
                self.register_buffer("input_scale", standardizer.scale.reciprocal())
                self.register_buffer("input_shift", -standardizer.mean / standardizer.scale)

    def forward(self, x):
        if self.standardised:
            x = torch.addcmul(self.input_shift, x, self.input_scale)
        tanhs = []
        for i, (passive, active) in enumerate(self.splits):
            def part(name, i=i):
                return getattr(self, f"{name}_{i}")

            halves = torch.split_with_sizes(x, (passive, active), 1)
            hidden = torch.relu(nn.functional.linear(halves[0], part("w1"), part("b1")))
            coupling = torch.split_with_sizes(torch.addmm(part("b2"), hidden, part("w2")), (active, active), 1)
            tanh = torch.tanh(coupling[0])
            tanhs.append(tanh)
            y = torch.cat((halves[0], torch.addcmul(coupling[1], halves[1], torch.exp(tanh * part("clamp")))), 1)
            x = torch.addcmul(part("offset"), y, part("scale")).index_select(1, part("perm"))
        base = torch.addmv(self.constant, torch.cat(tanhs, 1), self.log_det_weights)
        return torch.add(base, torch.linalg.vecdot(x, x), alpha=0.5 / self.dims), x


def _check(block):
    """Only what :func:`~daain_ros.detector.flow.build_flow` makes is folded; anything else is an error."""
    if not isinstance(block, IndexPermutedBlock) or block.GIN or block.householder or block.conditional \
            or block.reverse_pre_permute or not isinstance(block.subnet, nn.Sequential):
        raise DaainError(f"flow block {type(block).__name__}: expected an unconditional IndexPermutedBlock with "
                         "hard permutations and a Sequential subnet, as build_flow makes")
