# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""A one-frame mailbox between the subscription and the inference workers: memory stays bounded."""

import threading


class FrameSlot:
    """Holds only the newest waiting frame; a newer one replaces it and counts as dropped.

    The subscription callback only ever calls :meth:`put`, so it never waits for inference, and at
    most one frame waits whatever the input rate. Frames are numbered 0, 1, 2, ... in the order they are
    taken, so workers that take them in turn can publish their verdicts in that order
    (:class:`~daain_ros.ros.in_order.InOrder`).
    """

    def __init__(self):
        self._changed = threading.Condition()
        self._item = None
        self._closed = False
        self.dropped = 0
        self._taken = 0

    def put(self, item):
        """Makes ``item`` the waiting frame; returns True when it replaced one (a drop)."""
        with self._changed:
            if self._closed:
                return False
            replaced = self._item is not None
            self.dropped += replaced
            self._item = item
            self._changed.notify()
        return replaced

    def take(self, timeout=None):
        """Waits up to ``timeout`` s for a frame and removes it: (its number, the frame).

        None on timeout or after :meth:`close`.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed or self._item is None:
                return None
            item, self._item = self._item, None
            self._taken += 1
            return self._taken - 1, item

    def close(self):
        """Wakes the workers for good; later frames are ignored."""
        with self._changed:
            self._closed = True
            self._item = None
            self._changed.notify_all()
