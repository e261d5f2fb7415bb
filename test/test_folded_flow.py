# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The folded flow gives the FrEIA flow's NLL, latent and input gradient; it refuses blocks it cannot fold."""

import pytest
import torch
from FrEIA.modules import AllInOneBlock

from daain_ros.detector.flow import FlowConfig, build_flow, negative_log_likelihood
from daain_ros.detector.folded_flow import FoldedFlow
from daain_ros.detector.standardizer import Standardizer
from daain_ros.errors import DaainError


def _trained(dims=96, blocks=4, seed=0):
    """A flow far from its identity start: every coupling, global scale and offset moved."""
    flow = build_flow(dims, FlowConfig(blocks=blocks, seed=seed))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator))
    return flow.eval()


@pytest.mark.parametrize("dims", [96, 97])  # an odd count splits the halves unevenly
def test_folded_flow_gives_the_freia_nll_latent_and_gradient(dims):
    flow = _trained(dims)
    folded = FoldedFlow(flow)
    x = (1.5 * torch.randn(6, dims, generator=torch.Generator().manual_seed(1))).requires_grad_(True)
    expected_nll, expected_z = negative_log_likelihood(flow, x)
    expected_grad, = torch.autograd.grad(expected_nll.sum(), x)
    nll, z = folded(x)
    grad, = torch.autograd.grad(nll.sum(), x)
    assert (expected_z - x).abs().max() > 1  # the flow is not the identity
    torch.testing.assert_close(nll, expected_nll, rtol=1e-5, atol=0)
    torch.testing.assert_close(z, expected_z, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)


def test_folded_flow_is_a_snapshot_of_the_trained_parameters():
    flow = _trained()
    folded = FoldedFlow(flow)
    x = torch.randn(3, 96)
    with torch.no_grad():
        before = folded(x)[0]
        for p in flow.parameters():
            p.zero_()
        torch.testing.assert_close(folded(x)[0], before, rtol=0, atol=0)
        assert not torch.allclose(negative_log_likelihood(flow, x)[0], before)


def test_a_flow_of_blocks_it_cannot_fold_is_refused():
    dense = build_flow(16, FlowConfig(blocks=2), block=AllInOneBlock)
    with pytest.raises(DaainError, match="expected an unconditional IndexPermutedBlock"):
        FoldedFlow(dense)


def test_the_standardisation_folded_in_equals_standardising_first():
    flow = _trained()
    generator = torch.Generator().manual_seed(2)
    fit = 3 + 5 * torch.randn(200, 96, generator=generator) * torch.rand(96, generator=generator)
    standardizer = Standardizer(96).fit(fit)
    x = fit[:8] + torch.randn(8, 96, generator=generator)
    expected_nll, expected_z = negative_log_likelihood(flow, standardizer(x))
    nll, z = FoldedFlow(flow, standardizer)(x)
    torch.testing.assert_close(nll, expected_nll, rtol=1e-5, atol=0)
    torch.testing.assert_close(z, expected_z, rtol=1e-5, atol=1e-5)
