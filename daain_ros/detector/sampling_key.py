# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The secret sampling key: a blue-noise subset of ESPNet's activation space (DAAIN, arXiv 2105.14638).

The activation space is every hooked layer's output nearest-upsampled to the network input size and
stacked along channels, a (channel, y, x) grid of about 5.3k x 256 x 512 for p2q8. Poisson-disk sampling
(Bridson) over that grid spreads the samples evenly over layers and image regions. The space is never
built: each sample is mapped once to its layer's own tensor and position (``LayerGather``), so a forward
gathers only the sampled values. An attacker without the seed does not know which values are watched.
"""

from dataclasses import dataclass

import numpy as np

from daain_ros.errors import DaainError

BRIDSON_CANDIDATES = 30


@dataclass(frozen=True)
class LayerShape:
    """A hooked layer's name and output shape (channels, height, width) at the network input size."""

    name: str
    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class LayerGather:
    """What one layer contributes: flat indices into its output, in key order, for either memory layout.

    ``flat_indices`` index the output as (C, h, w); ``nhwc_indices`` as (h, w, C), so a channels-last
    output is read through a view instead of a copy.
    """

    name: str
    flat_indices: np.ndarray
    nhwc_indices: np.ndarray


def bridson(extent, radius, rng):
    """Poisson-disk samples in the box [0, extent) with minimum distance ``radius`` (Bridson 2007).

    A background grid of cells of side radius / sqrt(d) holds at most one sample each, so a candidate is
    checked against the 5**d cells around it only.
    """
    extent = np.asarray(extent, dtype=np.float64)
    dims = len(extent)
    cell = radius / np.sqrt(dims)
    grid = -np.ones(tuple(np.ceil(extent / cell).astype(int) + 4), dtype=np.int64)  # 2 cells of padding
    offsets = np.stack(np.meshgrid(*[np.arange(-2, 3)] * dims, indexing="ij"), -1).reshape(-1, dims)
    points = np.empty((grid.size, dims))  # at most one sample per cell
    points[0] = rng.uniform(0, extent)
    count = 1
    grid[tuple((points[0] // cell).astype(int) + 2)] = 0
    active = [0]
    while active:
        slot = int(rng.integers(len(active)))
        direction = rng.normal(size=(BRIDSON_CANDIDATES, dims))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        candidates = points[active[slot]] + direction * rng.uniform(radius, 2 * radius, (BRIDSON_CANDIDATES, 1))
        candidates = candidates[np.all((candidates >= 0) & (candidates < extent), axis=1)]
        accepted = _first_free(candidates, grid, offsets, points, cell, radius)
        if accepted is None:
            active.pop(slot)
            continue
        grid[tuple((accepted // cell).astype(int) + 2)] = count
        points[count] = accepted
        active.append(count)
        count += 1
    return points[:count].copy()


def _first_free(candidates, grid, offsets, points, cell, radius):
    """The first candidate at least ``radius`` from every sample in its neighbouring cells, or None."""
    if len(candidates) == 0:
        return None
    cells = (candidates // cell).astype(int)[:, None, :] + 2 + offsets[None]
    neighbours = grid[tuple(cells.transpose(2, 0, 1))]
    distance2 = ((points[np.maximum(neighbours, 0)] - candidates[:, None, :]) ** 2).sum(-1)
    free = np.all((neighbours < 0) | (distance2 >= radius * radius), axis=1)
    return candidates[np.argmax(free)] if free.any() else None


class SamplingKey:
    """Sorted (channel, y, x) indices into the virtual activation space of ``layers`` at ``size``."""

    def __init__(self, indices, layers, size, radius):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.layers = list(layers)
        self.size = tuple(int(s) for s in size)
        self.radius = float(radius)
        self._check()

    @property
    def dims(self):
        return len(self.indices)

    @property
    def total_channels(self):
        return sum(layer.channels for layer in self.layers)

    def _check(self):
        width, height = self.size
        bounds = np.array([self.total_channels, height, width])
        if self.indices.ndim != 2 or self.indices.shape[1] != 3 or len(self.indices) == 0:
            raise DaainError(f"sampling key of shape {self.indices.shape}: expected (K, 3) with K > 0")
        if np.any(self.indices < 0) or np.any(self.indices >= bounds):
            raise DaainError(f"sampling key indices fall outside the activation space {tuple(bounds)}")

    @classmethod
    def generate(cls, layers, size, seed, radius=None, target_dims=2000):
        """Draws a key from ``seed``: with ``radius`` as given, or a radius found for ``target_dims``."""
        width, height = size
        extent = (sum(layer.channels for layer in layers), height, width)
        rng = np.random.default_rng(seed)
        if radius is not None:
            return cls(_to_grid(bridson(extent, radius, rng), extent), layers, size, radius)
        radius = (np.prod(extent) / (0.6 * target_dims)) ** (1 / 3)
        points = bridson(extent, radius, rng)
        while len(points) < target_dims:
            radius *= 0.97 * (len(points) / target_dims) ** (1 / 3)
            points = bridson(extent, radius, rng)
        keep = np.sort(rng.choice(len(points), target_dims, replace=False))
        return cls(_to_grid(points[keep], extent), layers, size, radius)

    def layer_gathers(self):
        """Maps the key onto each layer's own tensor, as nearest upsampling would index it."""
        width, height = self.size
        gathers, offset = [], 0
        for layer in self.layers:
            channel, y, x = self.indices[(self.indices[:, 0] >= offset) &
                                         (self.indices[:, 0] < offset + layer.channels)].T
            ly = y * layer.height // height
            lx = x * layer.width // width
            flat = ((channel - offset) * layer.height + ly) * layer.width + lx
            nhwc = (ly * layer.width + lx) * layer.channels + channel - offset
            if len(flat):
                gathers.append(LayerGather(layer.name, flat, nhwc))
            offset += layer.channels
        return gathers

    def coverage(self):
        """How evenly the key covers layers and the image: counts, minimum distance, 4x4 spatial histogram."""
        per_layer = {g.name: len(g.flat_indices) for g in self.layer_gathers()}
        width, height = self.size
        hist, _, _ = np.histogram2d(self.indices[:, 1], self.indices[:, 2], bins=4,
                                    range=[[0, height], [0, width]])
        diffs = self.indices[:, None, :] - self.indices[None, :, :]
        dist = np.sqrt((diffs.astype(np.float64) ** 2).sum(-1))
        np.fill_diagonal(dist, np.inf)
        return {
            "dims": self.dims,
            "radius": self.radius,
            "layers_total": len(self.layers),
            "layers_sampled": len(per_layer),
            "samples_per_layer": per_layer,
            "min_pairwise_distance": float(dist.min()),
            "spatial_histogram_4x4": hist.astype(int).tolist(),
        }


def _to_grid(points, extent):
    """Rounds continuous samples down to grid cells, sorted (so each layer's samples are contiguous)."""
    grid = np.minimum(np.floor(points).astype(np.int64), np.asarray(extent) - 1)
    order = np.lexsort((grid[:, 2], grid[:, 1], grid[:, 0]))
    return grid[order]
