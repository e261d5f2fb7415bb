# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The numbers every report computes the same way: detection metrics, segmentation mIoU and ratios.

Detection metrics take per-image anomaly scores (higher = more anomalous; anomalous is the positive class)
and are thin wrappers around scikit-learn, so AUROC, AUPR and FPR at 95 % TPR mean the same everywhere. A
score that is not a finite number (the detector could not judge the image: its head returns +inf where
float32 cannot hold the score) counts as flagged, as the node counts it, and ranks above every finite
score; ties among such scores count half. numpy and scikit-learn only: the torch-free tools (bag reports,
the demo's report) use it too.
"""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from daain_ros.errors import DaainError
from daain_ros.segmentation.cityscapes import CLASS_NAMES, UNLABELLED


def judged_scores(name, scores):
    """The scores as a flat float64 array, each one that is not finite as the largest float (flagged).

    ``name`` names the set in the error an empty one raises.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise DaainError(f"{name} scores: expected a non-empty set of numbers, got none")
    return np.where(np.isfinite(scores), scores, np.finfo(np.float64).max)


def _labelled(clean_scores, anomalous_scores):
    clean = judged_scores("clean", clean_scores)
    anomalous = judged_scores("anomalous", anomalous_scores)
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
    return float((judged_scores("flagged", scores) > threshold).mean())


def detection_metrics(clean_scores, anomalous_scores):
    """AUROC, AUPR and FPR at 95 % TPR of one score on one clean and one anomalous set."""
    return {"auroc": auroc(clean_scores, anomalous_scores),
            "aupr": aupr(clean_scores, anomalous_scores),
            "fpr95": fpr_at_95_tpr(clean_scores, anomalous_scores)}


def _confusion(pred, labels, classes, ignore):
    """Pixel counts of (true class, predicted class) pairs, a classes x classes matrix with truth by row."""
    pred = np.asarray(pred).ravel().astype(np.int64)
    labels = np.asarray(labels).ravel().astype(np.int64)
    if pred.shape != labels.shape or labels.size == 0:
        raise DaainError(f"prediction of {pred.size} pixels, labels of {labels.size}: expected the same "
                         "positive number")
    if ignore is not None:
        keep = labels != ignore
        pred, labels = pred[keep], labels[keep]
    if classes is None:
        classes = int(max(pred.max(initial=0), labels.max(initial=0))) + 1
    pred = np.clip(pred, 0, classes - 1)
    return np.bincount(labels * classes + pred, minlength=classes * classes).reshape(classes, classes)


def miou(pred, labels, classes=len(CLASS_NAMES), ignore=UNLABELLED, count_predicted=False):
    """Intersection over union per class from one confusion matrix over all given pixels, and its mean.

    By default the mean is over the classes present in ``labels`` (the ground truth), so a class the
    truth never shows does not count however often it is predicted. With ``count_predicted`` it is over
    the classes either map has: comparing an attacked prediction with the clean one, a class the attack
    paints in is part of the damage (IoU 0).

    :param pred: predicted train ids (any shape, or a sequence of maps)
    :param labels: true train ids of the same shape; pixels labelled ``ignore`` (None: none) do not count
    :param classes: number of classes (predictions beyond are clipped into range); None: enough for both
        maps. The defaults are Cityscapes train ids with ``unlabelled`` ignored.
    :returns: (per-class IoU as a float array, NaN for the classes that do not count, mean IoU)
    """
    confusion = _confusion(pred, labels, classes, ignore)
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    counted = (union if count_predicted else confusion.sum(1)) > 0
    iou = np.full(len(confusion), np.nan)
    iou[counted] = tp[counted] / union[counted]
    return iou, float(iou[counted].mean()) if counted.any() else float("nan")


def ratio(a, b):
    """``a / b`` as a float, or None when ``a`` is unknown or ``b`` is unknown or zero (an empty cell)."""
    return float(a / b) if a is not None and b else None
