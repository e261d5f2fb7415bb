# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Heads: each score is what its docstring says, computed here from the flow's raw output."""

import math

import pytest
import torch

from daain_ros.detector.flow import FlowConfig, build_flow, negative_log_likelihood
from daain_ros.detector.heads import GAUSSIAN_LIMIT, HEAD_KINDS, ScoreHead
from daain_ros.errors import DaainError, NotFittedError

DIMS = 32


@pytest.fixture(scope="module")
def flow():
    flow = build_flow(DIMS, FlowConfig(blocks=3, seed=1))
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(2)))
    return flow.eval()


def test_cauchy_head_is_the_flows_nll_under_a_cauchy_latent(flow):
    x = torch.randn(6, DIMS, generator=torch.Generator().manual_seed(3)) * 3
    with torch.no_grad():
        nll, z = negative_log_likelihood(flow, x)
        _, log_det = flow(x)
        expected = -(torch.distributions.Cauchy(0.0, 1.0).log_prob(z).sum(1) + log_det) / DIMS
        gaussian = -(torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) + log_det) / DIMS
        torch.testing.assert_close(ScoreHead("cauchy", DIMS)(nll, z), expected)
        torch.testing.assert_close(ScoreHead("nll", DIMS)(nll, z), gaussian)
        torch.testing.assert_close(ScoreHead("znorm", DIMS)(nll, z), (z ** 2).mean(1))


def test_cauchy_head_ranks_broad_shift_above_one_far_dimension():
    """A new scene: one latent at 800, the rest typical; a degraded frame: every latent at 3."""
    nll_head, cauchy_head = ScoreHead("nll", DIMS), ScoreHead("cauchy", DIMS)
    scene = torch.zeros(1, DIMS)
    scene[0, 0] = 800.0
    degraded = torch.full((1, DIMS), 3.0)
    z = torch.cat([scene, degraded])
    nll = 0.5 * (z ** 2).mean(1) + 0.5 * math.log(2 * math.pi)  # an identity flow: log det 0
    gaussian, cauchy = nll_head(nll, z), cauchy_head(nll, z)
    assert gaussian[0] > 100 * gaussian[1]
    assert cauchy[1] > cauchy[0]


def test_cauchy_head_is_exact_to_a_hundredth_up_to_its_limit_and_infinite_beyond():
    """An identity flow's float32 NLL with (nearly) every latent at one value.

    Below the limit the score is the float64 Cauchy NLL within 0.01; beyond it, where rounding has eaten the
    log-determinant, it is +inf, never a small number.
    """
    head = ScoreHead("cauchy", DIMS)
    for gaussian in (0.9 * GAUSSIAN_LIMIT, 2.0 * GAUSSIAN_LIMIT):
        z = torch.full((1, DIMS), math.sqrt(2 * gaussian))
        z[0, 0] += 0.37  # not every latent alike: the two sums round differently
        nll = 0.5 * (z ** 2).mean(1) + 0.5 * math.log(2 * math.pi)
        exact = torch.log(math.pi * (1 + z.double() ** 2)).mean(1)
        score = head(nll, z)
        if gaussian < GAUSSIAN_LIMIT:
            assert abs(float(score) - float(exact)) < 0.01
        else:
            assert math.isinf(float(score)) and score > 0


def test_cauchy_head_flags_a_flow_output_far_beyond_float32s_reach(flow):
    """Inputs 10^4 standard deviations out (the graph once scored normal noise in network units 0.23 this way)."""
    x = torch.randn(4, DIMS, generator=torch.Generator().manual_seed(6)) * 1e4
    with torch.no_grad():
        nll, z = negative_log_likelihood(flow, x)
        assert bool((0.5 * (z ** 2).mean(1) > GAUSSIAN_LIMIT).all())
        assert bool(torch.isposinf(ScoreHead("cauchy", DIMS)(nll, z)).all())


def test_hbos_head_needs_fitting_and_scores_outside_the_training_range_higher():
    head = ScoreHead("hbos", DIMS)
    z = torch.randn(500, DIMS, generator=torch.Generator().manual_seed(4))
    with pytest.raises(NotFittedError, match="hbos head used before fit"):
        head(torch.zeros(1), z[:1])
    head.fit(z)
    inside, outside = head(torch.zeros(2), torch.stack([torch.zeros(DIMS), torch.full((DIMS,), 10.0)]))
    assert outside > inside


def test_unknown_head_is_refused_naming_the_choices():
    with pytest.raises(DaainError, match="head 'gauss': expected one of " + ", ".join(HEAD_KINDS)):
        ScoreHead("gauss", DIMS)


@pytest.mark.parametrize("kind", ["hbos", "cauchy"])
def test_fitted_state_travels_with_the_state_dict_and_forward_reads_no_buffer(kind):
    """Forward checks a Python flag (no device sync per frame); loading a state dict sets it from the buffer."""
    z = torch.randn(200, DIMS, generator=torch.Generator().manual_seed(5))
    fitted, fresh = ScoreHead(kind, DIMS).fit(z), ScoreHead(kind, DIMS)
    fresh.load_state_dict(fitted.state_dict())
    assert fresh.is_fitted and bool(fresh.fitted)
    torch.testing.assert_close(fresh(torch.zeros(3), z[:3]), fitted(torch.zeros(3), z[:3]))
    if kind == "hbos":
        fitted.load_state_dict(ScoreHead(kind, DIMS).state_dict())
        with pytest.raises(NotFittedError, match="hbos head used before fit"):
            fitted(torch.zeros(1), z[:1])
