"""Detection metrics for per-image anomaly scores (higher = more anomalous; anomalous is the positive class).

Thin wrappers around scikit-learn so every report computes AUROC, AUPR and FPR at 95 % TPR the same way.
"""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from daain_ros.errors import DaainError


def _scores(name, scores):
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0 or not np.isfinite(scores).all():
        raise DaainError(f"{name} scores: expected a non-empty set of finite numbers, got {scores.size} values "
                         f"({int((~np.isfinite(scores)).sum())} not finite)")
    return scores


def _labelled(clean_scores, anomalous_scores):
    clean = _scores("clean", clean_scores)
    anomalous = _scores("anomalous", anomalous_scores)
    labels = np.concatenate([np.zeros(clean.size), np.ones(anomalous.size)])
    return labels, np.concatenate([clean, anomalous])


def auroc(clean_scores, anomalous_scores):
    """Area under the ROC curve: the chance an anomalous image outscores a clean one (ties count half)."""
    return float(roc_auc_score(*_labelled(clean_scores, anomalous_scores)))


def aupr(clean_scores, anomalous_scores):
    """Area under the precision-recall curve with anomalous positive (scikit-learn's average precision)."""
    return float(average_precision_score(*_labelled(clean_scores, anomalous_scores)))


def fpr_at_95_tpr(clean_scores, anomalous_scores):
    """Share of clean images flagged at the highest threshold that flags at least 95 % of anomalous ones."""
    fpr, tpr, _ = roc_curve(*_labelled(clean_scores, anomalous_scores), drop_intermediate=False)
    return float(fpr[np.searchsorted(tpr, 0.95, side="left")])


def flag_rate(scores, threshold):
    """Share of images whose score is strictly above ``threshold`` (what the detector flags)."""
    return float((_scores("flagged", scores) > threshold).mean())


def detection_metrics(clean_scores, anomalous_scores):
    """AUROC, AUPR and FPR at 95 % TPR of one score on one clean and one anomalous set."""
    return {"auroc": auroc(clean_scores, anomalous_scores),
            "aupr": aupr(clean_scores, anomalous_scores),
            "fpr95": fpr_at_95_tpr(clean_scores, anomalous_scores)}
