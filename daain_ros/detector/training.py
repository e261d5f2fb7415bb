# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Training one detector on activations: standardiser, flow (its best epoch on validation) and head."""

import torch

from daain_ros.detector.daain import DaainDetector
from daain_ros.detector.flow import fit_flow, negative_log_likelihood


def train_detector(key, config, flow_config, train, valid, progress, anomalous=None):
    """A detector trained on ``train`` activations (keeping the epoch best on ``valid``, unless None).

    The supervised head also learns from ``anomalous`` activations.
    """
    detector = DaainDetector(key, config.head, flow_config).to(train.device)
    detector.standardizer.fit(train)
    summary = fit_flow(detector.flow, detector.standardizer(train),
                       None if valid is None else detector.standardizer(valid), flow_config, progress)
    detector.eval()
    with torch.no_grad():
        clean = negative_log_likelihood(detector.flow, detector.standardizer(train))
        detector.head.fit(clean[1])
        if config.head == "supervised":
            detector.head.fit_supervised(clean, negative_log_likelihood(detector.flow,
                                                                        detector.standardizer(anomalous)))
    return detector, summary
