# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The k-of-n debounce of the anomaly flag, against a brute-force count over the window."""

import numpy as np
import pytest

from daain_ros.errors import DaainError
from daain_ros.ros.debounce import KOfN


def test_default_passes_every_verdict_through():
    debounce = KOfN()
    verdicts = [False, True, True, False, True, False, False]
    assert [debounce.update(v) for v in verdicts] == verdicts


def test_two_of_three_ignores_a_glitch_and_releases_after_two_clean_frames():
    debounce = KOfN(2, 3)
    assert [debounce.update(v) for v in [True, False, False, True, True, False, False]] == [
        False, False, False, False, True, True, False]


@pytest.mark.parametrize("k,n", [(1, 1), (1, 4), (2, 3), (3, 3), (3, 5)])
def test_flag_equals_count_of_anomalous_in_last_n(k, n):
    rng = np.random.default_rng(k * 10 + n)
    verdicts = rng.random(300) < 0.4
    debounce = KOfN(k, n)
    flags = [debounce.update(v) for v in verdicts]
    expected = [verdicts[max(0, i - n + 1):i + 1].sum() >= k for i in range(len(verdicts))]
    assert flags == expected


def test_reset_starts_a_new_window():
    debounce = KOfN(2, 3)
    debounce.update(True)
    debounce.reset()
    assert not debounce.update(True) and debounce.anomalous_in_window == 1


@pytest.mark.parametrize("k,n", [(0, 1), (2, 1), (1, 0), (1.0, 2), ("1", 1)])
def test_invalid_k_or_n_is_refused_with_both_values(k, n):
    with pytest.raises(DaainError, match=f"k={k!r}, n={n!r}"):
        KOfN(k, n)
