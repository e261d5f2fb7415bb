# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The newest-frame slot: bounded to one waiting frame, every replaced frame counted as dropped."""

import threading

from daain_ros.ros.frame_slot import FrameSlot


def test_newer_frames_replace_the_waiting_one_and_count_as_dropped():
    slot = FrameSlot()
    replaced = [slot.put(i) for i in range(5)]
    assert replaced == [False, True, True, True, True]
    assert slot.take(timeout=0) == (0, 4)
    assert slot.take(timeout=0) is None
    assert slot.dropped == 4
    slot.put(5)
    assert slot.take(timeout=0) == (1, 5)  # numbered in the order taken


def test_producer_flood_keeps_put_equal_to_taken_plus_dropped():
    slot, taken, put = FrameSlot(), [], 10_000
    consumer = threading.Thread(target=lambda: [taken.append(item) for _, item in iter(slot.take, None)])
    consumer.start()
    for i in range(put):
        slot.put(i)
    while put - slot.dropped > len(taken):  # the last frame is always delivered
        threading.Event().wait(0.001)
    slot.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive()
    assert taken == sorted(taken) and taken[-1] == 9_999
    assert put == len(taken) + slot.dropped


def test_close_wakes_a_waiting_taker_and_ignores_later_frames():
    slot = FrameSlot()
    result = []
    taker = threading.Thread(target=lambda: result.append(slot.take()))
    taker.start()
    slot.close()
    taker.join(timeout=5)
    assert result == [None]
    assert slot.put(1) is False and slot.take(timeout=0) is None
