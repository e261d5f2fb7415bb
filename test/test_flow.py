"""The flow: FrEIA's permutation as an index gather equals its dense product; invertible; seeded."""

import torch
import torch.nn.functional as F

from daain_ros.flow import FlowConfig, build_flow, negative_log_likelihood


def _trained(seed):
    flow = build_flow(64, FlowConfig(blocks=3, seed=seed))
    with torch.no_grad():
        for p in flow.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    return flow.eval()


def test_gather_permutation_equals_freia_dense_product():
    flow = _trained(0)
    x = torch.randn(5, 64)
    with torch.no_grad():
        ours = negative_log_likelihood(flow, x)
        for block in flow.module_list:
            block.permute_function = F.linear
        dense = negative_log_likelihood(flow, x)
    torch.testing.assert_close(ours[0], dense[0])
    torch.testing.assert_close(ours[1], dense[1])


def test_flow_inverts_and_indices_follow_a_loaded_state():
    flow, other = _trained(1), build_flow(64, FlowConfig(blocks=3, seed=2))
    other.load_state_dict(flow.state_dict())
    x = torch.randn(4, 64)
    with torch.no_grad():
        z, _ = other(x)
        back, _ = other(z, rev=True)
        torch.testing.assert_close(z, flow(x)[0])
    torch.testing.assert_close(back, x, atol=1e-4, rtol=1e-4)
