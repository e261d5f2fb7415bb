# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Frames that never reached the node's callback, counted from the gaps in each publisher's sequence numbers."""


class SequenceGaps:
    """Counts the frames missing between those that arrived, per publisher.

    The subscription keeps its newest few samples (keep-last); when the executor cannot take them as fast as
    they come, the oldest are overwritten before the callback sees them, and a best-effort transport loses
    others. The one-frame slot never sees those, so its drop count alone would under-report what was not
    judged. Each publisher numbers its samples 1, 2, 3, ... (the middleware's publication sequence number); a
    sample that skips numbers counts the skipped ones as lost. A middleware that does not number samples
    reports none, and nothing is counted.
    """

    def __init__(self):
        self.lost = 0
        self._last = {}  # publisher gid -> its last sequence number seen

    def arrived(self, info):
        """Counts the gap before a sample whose ``rclpy`` message info is ``info``."""
        gid, number = info.get("publisher_gid"), info.get("publication_sequence_number")
        if not gid or not number:
            return
        key = bytes(gid["data"])
        last = self._last.get(key, number - 1)
        self.lost += max(0, number - last - 1)
        self._last[key] = max(last, number)

    def restart(self):
        """Forgets the publishers' numbers: the samples published while nobody listened were not lost."""
        self._last.clear()
