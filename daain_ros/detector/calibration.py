# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The detector's threshold: calibrated to a target false-positive rate on out-of-fold scores of the fit frames.

A drive drifts: a threshold from the last fifth of the fit frames alone was set by whichever frame was
most unusual. Scoring every fit frame with a detector that never saw it nor its neighbours in time
(:func:`cross_fitted_scores`) calibrates on the drive as a whole.
"""

from dataclasses import replace

import numpy as np
import torch
from tqdm import tqdm

from daain_ros.detector.training import train_detector


def calibrate(scores, target_fpr):
    """The threshold that flags ``target_fpr`` of ``scores`` (clean held-out frames), with figures."""
    scores = np.asarray(scores, dtype=np.float64)
    threshold = float(np.quantile(scores, 1 - target_fpr, method="higher"))
    return threshold, {
        "target_fpr": target_fpr,
        "threshold": threshold,
        "frames": int(len(scores)),
        "flag_rate": float(np.mean(scores > threshold)),
        "score_quantiles": {q: float(np.quantile(scores, float(q))) for q in ("0.5", "0.9", "0.99")},
    }


def cross_fitted_scores(key, config, activations, frames, epochs, progress=True, anomalous=None):
    """Out-of-fold scores of the ``frames`` fit frames (activations: each frame, then its jittered copies).

    The frames are cut into ``config.calibration_folds`` consecutive stretches; each stretch is scored by
    a detector trained for ``epochs`` epochs on the others, so every fit frame gets a score from a
    detector that never saw it nor its neighbours in time. ``anomalous`` (the supervised head's generated
    anomalies, ``len(config.anomaly_kinds)`` blocks of one row per fit frame from the first on) loses the
    rows made from the held-out stretch too.
    """
    rows = config.augment_copies + 1
    scores = np.empty(frames)
    for stretch in tqdm(np.array_split(np.arange(frames), config.calibration_folds), desc="calibration folds",
                        unit="fold", disable=not progress, leave=False):
        held = torch.zeros(frames, dtype=torch.bool, device=activations.device)
        held[torch.as_tensor(stretch, device=activations.device)] = True
        held = held.repeat_interleave(rows)
        others = None
        if anomalous is not None:  # one block of the training frames per kind: row i made from frame i % block
            block = len(anomalous) // len(config.anomaly_kinds)
            made_from = torch.arange(len(anomalous), device=anomalous.device) % block
            others = anomalous[~torch.isin(made_from, torch.as_tensor(stretch, device=anomalous.device))]
        detector, _ = train_detector(key, config, replace(config.flow, epochs=epochs), activations[~held], None,
                                     False, others)
        with torch.no_grad():
            scores[stretch] = detector(activations[held][::rows]).double().cpu().numpy()
    return scores
