# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The DAAIN detector ("DAAIN: Detection of Anomalous and Adversarial Input using Normalizing Flows", arXiv 2105.14638).

Standardisation, flow and head over a sampling key's activations, and the monitored forward pass that gathers those
activations.
"""

import torch
from torch import nn
from tqdm import tqdm

from daain_ros.detector.flow import build_flow, negative_log_likelihood
from daain_ros.detector.heads import ScoreHead
from daain_ros.detector.standardizer import Standardizer
from daain_ros.segmentation.preprocess import preprocess


class DaainDetector(nn.Module):
    """Scores sampled activations: standardisation, then flow NLL and latent z, then the head."""

    def __init__(self, key, head_kind, flow_config, threshold=float("inf"), metadata=None):
        super().__init__()
        self.key = key
        self.standardizer = Standardizer(key.dims)
        self.flow = build_flow(key.dims, flow_config)
        self.flow_config = flow_config
        self.head = ScoreHead(head_kind, key.dims)
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.metadata = dict(metadata or {})

    def forward(self, activations):
        """N x K activations -> N scores (higher = more anomalous)."""
        nll, z = negative_log_likelihood(self.flow, self.standardizer(activations))
        return self.head(nll, z)


def extract_activations(monitor, images_bgr, size, batch_size=8, progress=True, desc="activations"):
    """Runs the monitored model over images in batches: (N x K activations, N x H x W train ids)."""
    device = monitor.model.device
    acts, labels = [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images_bgr), batch_size), desc=desc, unit="batch",
                          disable=not progress, leave=False):
            logits, sampled = monitor(preprocess(images_bgr[start:start + batch_size], size, device))
            acts.append(sampled.float())
            labels.append(logits.argmax(1).byte())
    return torch.cat(acts), torch.cat(labels)
