# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The k-of-n debounce of the anomaly flag: a planner trades reaction time for a steadier flag."""

from collections import deque

from daain_ros.errors import DaainError


class KOfN:
    """Raises the flag while at least ``k`` of the last ``n`` verdicts were anomalous.

    ``k = n = 1`` (the default) passes every verdict through. A larger ``k`` needs ``k`` anomalous
    frames before the flag rises (a single glitch is ignored); once raised, the flag falls only after
    ``n - k + 1`` clean frames have pushed enough anomalous ones out of the window. Before ``n``
    verdicts have been seen the window is simply shorter.
    """

    def __init__(self, k=1, n=1):
        if not isinstance(k, int) or not isinstance(n, int) or not 1 <= k <= n:
            raise DaainError(f"debounce k={k!r}, n={n!r}: expected integers with 1 <= k <= n")
        self.k, self.n = k, n
        self._window = deque(maxlen=n)

    def update(self, anomalous):
        """Records one verdict and returns the debounced flag."""
        self._window.append(bool(anomalous))
        return self.flag

    def reset(self):
        """Forgets the window (after the input stopped, the next frames start a new one)."""
        self._window.clear()

    @property
    def flag(self):
        return sum(self._window) >= self.k

    @property
    def anomalous_in_window(self):
        return sum(self._window)
