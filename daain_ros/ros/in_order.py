# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Verdicts in arrival order while several workers judge frames at once."""

import threading


class InOrder:
    """Runs the actions numbered 0, 1, 2, ... one at a time and in that order, whatever order they come in.

    A worker that finishes frame 5 before another finishes frame 4 waits for it, so ``/daain/anomaly`` and the
    debounce window see the frames in the order they were taken. Every number must come once (or the ones
    after it wait until :meth:`close`).
    """

    def __init__(self):
        self._turn = threading.Condition()
        self._next = 0
        self._closed = False

    def run(self, number, action):
        """Waits for ``number``'s turn, runs ``action()`` and passes the turn on, also when it raises.

        After :meth:`close` it returns at once without running ``action``: False; otherwise True.
        """
        with self._turn:
            self._turn.wait_for(lambda: self._next == number or self._closed)
            if self._closed:
                return False
            try:
                action()
            finally:
                self._next += 1
                self._turn.notify_all()
            return True

    def close(self):
        """Releases every waiting worker for good (the node stops judging)."""
        with self._turn:
            self._closed = True
            self._turn.notify_all()
