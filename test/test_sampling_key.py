# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The sampling key: determinism in the seed, blue-noise spacing, even coverage of layers and image."""

import numpy as np
import pytest

from daain_ros.detector.sampling_key import LayerShape, SamplingKey, bridson
from daain_ros.errors import DaainError

LAYERS = [LayerShape(f"layer{i}", 40, 256 // s, 512 // s) for i, s in enumerate([1, 2, 4, 8] * 8)]


def test_same_seed_same_key_other_seed_other_key():
    a = SamplingKey.generate(LAYERS, (512, 256), seed=7, target_dims=600)
    b = SamplingKey.generate(LAYERS, (512, 256), seed=7, target_dims=600)
    c = SamplingKey.generate(LAYERS, (512, 256), seed=8, target_dims=600)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.dims == c.dims == 600
    assert len({tuple(r) for r in a.indices} & {tuple(r) for r in c.indices}) < 30


def test_bridson_keeps_minimum_distance_and_fills_the_box():
    points = bridson((400.0, 64.0, 128.0), 16.0, np.random.default_rng(0))
    dist = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    assert dist.min() >= 16.0
    # maximal: no empty ball of radius 2r fits (checked on a coarse probe grid)
    probes = np.stack(np.meshgrid(np.arange(8, 400, 40), np.arange(8, 64, 24), np.arange(8, 128, 24),
                                  indexing="ij"), -1).reshape(-1, 3)
    nearest = np.sqrt(((probes[:, None] - points[None]) ** 2).sum(-1)).min(1)
    assert nearest.max() < 2 * 16.0


def test_coverage_spreads_over_layers_and_image():
    key = SamplingKey.generate(LAYERS, (512, 256), seed=3, radius=40.0)
    coverage = key.coverage()
    assert coverage["layers_sampled"] == len(LAYERS)
    counts = np.array(list(coverage["samples_per_layer"].values()))
    assert counts.min() >= 0.5 * counts.mean()
    hist = np.array(coverage["spatial_histogram_4x4"])
    assert hist.min() >= 0.5 * hist.mean()
    assert coverage["min_pairwise_distance"] >= 40.0 - np.sqrt(3)


def test_layer_gathers_map_to_nearest_upsampled_positions():
    layers = [LayerShape("a", 2, 4, 8), LayerShape("b", 3, 2, 4)]
    key = SamplingKey(np.array([[0, 3, 7], [1, 0, 0], [2, 1, 5], [4, 3, 3]]), layers, (8, 4), 1.0)
    gathers = key.layer_gathers()
    assert [g.name for g in gathers] == ["a", "b"]
    np.testing.assert_array_equal(gathers[0].flat_indices, [0 * 32 + 3 * 8 + 7, 1 * 32 + 0])
    # channel 2 -> layer b channel 0 at (1 // 2, 5 // 2); channel 4 -> b channel 2 at (3 // 2, 3 // 2)
    np.testing.assert_array_equal(gathers[1].flat_indices, [0 * 8 + 0 * 4 + 2, 2 * 8 + 1 * 4 + 1])


def test_key_outside_the_space_is_refused():
    with pytest.raises(DaainError, match="outside the activation space"):
        SamplingKey(np.array([[5, 0, 0]]), [LayerShape("a", 2, 4, 8)], (8, 4), 1.0)
