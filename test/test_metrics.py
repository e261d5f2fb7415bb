# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Detection metrics, mIoU and ratios on cases whose answers are worked out by hand."""

import numpy as np
import pytest

from daain_ros.errors import DaainError
from daain_ros.evaluation.metrics import aupr, auroc, detection_metrics, flag_rate, fpr_at_95_tpr, miou, ratio


def test_two_against_two_by_hand():
    # pairs (clean, anomalous) ordered right: (.1,.35) (.1,.8) (.4,.8); wrong: (.4,.35) -> AUROC 3/4.
    # ranking .8 (anom), .4 (clean), .35 (anom): precision 1 at recall 1/2, 2/3 at recall 1 -> AP 5/6.
    # detecting both anomalies needs threshold .35, which also flags the clean .4 -> FPR 1/2.
    assert detection_metrics([0.1, 0.4], [0.35, 0.8]) == pytest.approx({"auroc": 0.75, "aupr": 5 / 6, "fpr95": 0.5})


def test_fpr95_uses_every_threshold():
    # 19 of 20 anomalies (5..24) are >= 6, which flags clean 6, 7, 8, 9: FPR 0.4. scikit-learn's default
    # drop_intermediate=True removes that ROC point and would give 0.5.
    clean, anomalous = np.arange(10), np.arange(5, 25)
    assert fpr_at_95_tpr(clean, anomalous) == pytest.approx(0.4)
    # wrong pairs: anomaly 5 below clean 6-9, 6 below 7-9, ... = 4+3+2+1 = 10; five ties count half
    assert auroc(clean, anomalous) == pytest.approx(1 - (10 + 2.5) / 200)


def test_perfect_reversed_and_tied_scores():
    assert detection_metrics([0, 1], [2, 3]) == {"auroc": 1.0, "aupr": 1.0, "fpr95": 0.0}
    assert auroc([2, 3], [0, 1]) == 0.0 and fpr_at_95_tpr([2, 3], [0, 1]) == 1.0
    assert auroc([1, 1, 1], [1, 1]) == 0.5
    assert aupr([1, 1, 1], [1, 1]) == pytest.approx(2 / 5)  # one threshold: precision = share anomalous


def test_flag_rate_is_strictly_above():
    assert flag_rate([0.1, 0.5, 0.5, 0.9], 0.5) == 0.25
    assert flag_rate(np.array([[1.0, 2.0]]), 0.0) == 1.0


def test_empty_scores_are_refused():
    with pytest.raises(DaainError, match="clean scores: expected a non-empty set of numbers, got none"):
        detection_metrics([], [1.0])


def test_a_score_that_is_not_finite_counts_as_flagged_and_ranks_above_every_finite_one():
    """As the node judges it: an image the detector cannot score is anomalous, whatever the threshold."""
    assert flag_rate([np.nan, np.inf, -np.inf, 0.1], 1e300) == 0.75
    assert auroc([0.0, np.nan], [1.0]) == 0.5  # the NaN clean image outranks the anomalous one
    assert auroc([0.0], [np.inf, 5.0]) == 1.0
    assert auroc([np.inf], [np.nan]) == 0.5  # a tie
    assert fpr_at_95_tpr([0.0, 1.0], [np.inf]) == 0.0


def test_miou_against_ground_truth_by_hand():
    labels = np.array([[0, 0, 1, 1], [2, 2, 2, 19]])
    per_class, mean = miou(labels, labels)
    assert mean == 1.0 and np.isnan(per_class[3])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 5]])
    per_class, mean = miou(pred, labels)
    # road: tp 1, fp 1 (the 2 predicted as 0), fn 1 -> 1/3; sidewalk: tp 2, fp 1 -> 2/3; building: tp 2, fn 1 -> 2/3
    np.testing.assert_allclose(per_class[[0, 1, 2]], [1 / 3, 2 / 3, 2 / 3])
    assert mean == pytest.approx(5 / 9)  # the unlabelled pixel (19) is ignored, class 5 never occurs
    with pytest.raises(DaainError, match="expected the same positive number"):
        miou(pred[:1], labels)


def test_miou_counting_predicted_classes_charges_a_class_painted_in():
    truth, pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    # class 0: tp 1, union 2 -> 1/2; class 1: 1; class 2 is only predicted: IoU 0 when it counts
    per_class, mean = miou(pred, truth, classes=None, ignore=None)
    assert mean == pytest.approx(3 / 4) and np.isnan(per_class[2]) and len(per_class) == 3
    per_class, mean = miou(pred, truth, classes=None, ignore=None, count_predicted=True)
    assert mean == pytest.approx(1 / 2) and per_class[2] == 0


def test_ratio_is_a_float_or_an_empty_cell():
    assert ratio(1, 4) == 0.25 and type(ratio(np.int64(3), np.int64(4))) is float
    assert ratio(None, 4) is None and ratio(1, 0) is None and ratio(1, None) is None
