"""Detection metrics on cases whose answers are worked out by hand."""

import numpy as np
import pytest

from daain_ros.errors import DaainError
from daain_ros.evaluation.metrics import aupr, auroc, detection_metrics, flag_rate, fpr_at_95_tpr


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


@pytest.mark.parametrize("clean, anomalous", [([], [1.0]), ([0.0, np.nan], [1.0]), ([0.0], [np.inf])])
def test_empty_or_non_finite_scores_are_refused(clean, anomalous):
    with pytest.raises(DaainError, match="expected a non-empty set of finite numbers"):
        detection_metrics(clean, anomalous)
