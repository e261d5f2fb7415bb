# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Secret random projections across channels, a defence tried against the key-agnostic attacker (issue 16).

The key-agnostic attacker keeps every position of every leaf layer typical channel by channel; what it does
not see is how channels move together. Here a secret seed draws ``directions`` random unit vectors per leaf
layer across its channels; each is applied at every position to the per-channel standardised residuals (the
attacker's own ``LayerStatistics``), and the log of its mean square over positions is standardised against
calibration frames. A frame's score is the largest of these values: without the seed, the attacker cannot
compute it.
"""

import numpy as np
import torch

from daain_ros.errors import DaainError
from daain_ros.evaluation.key_agnostic import hooked
from daain_ros.segmentation.preprocess import preprocess


class SecretProjections:
    """Fitted by :meth:`fit`; ``score(model, images)`` is the largest standardised projection statistic per frame."""

    def __init__(self, statistics, directions, mean, scale):
        self.statistics = statistics
        self.directions = directions
        self.mean = mean
        self.scale = scale

    @classmethod
    def fit(cls, model, statistics, calibration_bgr, directions=64, seed=None):
        """Draws the directions from ``seed`` (a fresh secret when None) and standardises on calibration frames.

        The calibration frames should not be those the statistics were fitted on: their residuals are smaller.
        """
        if directions < 1 or len(calibration_bgr) < 2:
            raise DaainError(f"{directions} directions, {len(calibration_bgr)} calibration frames: expected at "
                             "least 1 and 2")
        generator = torch.Generator().manual_seed(int(np.random.default_rng(seed).integers(2 ** 63)))
        drawn = {name: torch.nn.functional.normalize(torch.randn(directions, mean.shape[0], generator=generator),
                                                     dim=1).to(mean.device)
                 for name, mean in statistics.means.items()}
        values = _log_mean_squares(model, statistics, drawn, calibration_bgr)
        return cls(statistics, drawn, values.mean(0), values.std(0) + 1e-6)

    def score(self, model, images_bgr):
        """The largest standardised value per frame (higher: further from the calibration frames)."""
        values = _log_mean_squares(model, self.statistics, self.directions, images_bgr)
        return ((values - self.mean) / self.scale).max(1)


def _log_mean_squares(model, statistics, directions, images_bgr, batch_size=4):
    """Per frame, every layer's and direction's log mean square over positions (frames x layers * directions)."""
    rows = []

    def record(name, output):
        residual = ((output - statistics.means[name]) / statistics.scales[name]).flatten(2)
        current.append(torch.einsum("kc,ncp->nkp", directions[name], residual).square().mean(2).log())

    with hooked(model, list(directions), record), torch.inference_mode():
        for start in range(0, len(images_bgr), batch_size):
            current = []
            model.logits(preprocess(images_bgr[start:start + batch_size], statistics.size, model.device))
            rows.append(torch.cat(current, 1).double().cpu().numpy())
    return np.concatenate(rows)
