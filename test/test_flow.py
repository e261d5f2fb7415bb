# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The flow.

FrEIA's permutation as an index gather equals its dense product; invertible; seeded; its config reads older detector
files.
"""

import json
import subprocess
import sys

import pytest
import torch
from FrEIA.modules import AllInOneBlock

from daain_ros.demo.default_assets import DEFAULT_DIR
from daain_ros.detector.flow import FlowConfig, build_flow, negative_log_likelihood


def _trained(seed):
    flow = build_flow(64, FlowConfig(blocks=3, seed=seed))
    with torch.no_grad():
        for p in flow.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    return flow.eval()


def test_gather_permutation_equals_freia_dense_product():
    flow = _trained(0)
    dense = build_flow(64, FlowConfig(blocks=3, seed=0), block=AllInOneBlock)  # FrEIA's own block, same draws
    state = {name: value for name, value in flow.state_dict().items() if not name.endswith("perm_index")}
    assert dense.load_state_dict(state, strict=False).missing_keys == [
        f"module_list.{i}.{name}" for i in range(3) for name in ("w_perm", "w_perm_inv")]
    x = torch.randn(5, 64)
    with torch.no_grad():
        ours, theirs = negative_log_likelihood(flow, x), negative_log_likelihood(dense.eval(), x)
        torch.testing.assert_close(ours[0], theirs[0])
        torch.testing.assert_close(ours[1], theirs[1])
        torch.testing.assert_close(flow(ours[1], rev=True)[0], dense(theirs[1], rev=True)[0])


def test_flow_keeps_index_permutations_only():
    flow = build_flow(2000, FlowConfig(blocks=8))
    assert not any("w_perm" in name for name in flow.state_dict())
    assert sum(t.numel() * t.element_size() for t in flow.state_dict().values()) < 2 << 20  # dense: 257 MB


def test_flow_inverts_and_indices_follow_a_loaded_state():
    flow, other = _trained(1), build_flow(64, FlowConfig(blocks=3, seed=2))
    other.load_state_dict(flow.state_dict())
    x = torch.randn(4, 64)
    with torch.no_grad():
        z, _ = other(x)
        back, _ = other(z, rev=True)
        torch.testing.assert_close(z, flow(x)[0])
    torch.testing.assert_close(back, x, atol=1e-4, rtol=1e-4)


def test_building_a_flow_leaves_no_dense_permutations_resident():
    """Dense D x D permutations, two per FrEIA block (8 blocks of 2,000 dims: 200 MB): trimmed, none stays alive.

    Counted over every tensor the garbage collector knows of, in a fresh interpreter (this one holds other tests'
    tensors).
    """
    code = ("import gc, torch; from daain_ros.detector.flow import FlowConfig, build_flow\n"
            "flow = build_flow(2000, FlowConfig(blocks=8)); gc.collect()\n"
            "print(sum(isinstance(o, torch.Tensor) and o.dim() == 2 and min(o.shape) >= 2000 "
            "for o in gc.get_objects()))")
    dense = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert dense == 0


def test_config_round_trips_and_ignores_only_the_retired_patience():
    config = FlowConfig(blocks=3, epochs=7, seed=2)
    assert FlowConfig.from_dict(config.to_dict()) == config
    assert FlowConfig.from_dict({**config.to_dict(), "patience": 15}) == config
    with pytest.raises(TypeError, match="depth"):
        FlowConfig.from_dict({**config.to_dict(), "depth": 2})
    with pytest.raises(TypeError, match="expected a mapping"):
        FlowConfig.from_dict([3, 7])


def test_the_packaged_detector_written_with_patience_still_reads():
    stored = json.loads((DEFAULT_DIR / "detector" / "detector.json").read_text())["flow"]
    assert "patience" in stored
    assert FlowConfig.from_dict(stored).to_dict() == {k: v for k, v in stored.items() if k != "patience"}
