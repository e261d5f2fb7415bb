# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Verdicts of several workers published in the order their frames were taken."""

import random
import threading
import time

import pytest

from daain_ros.ros.in_order import InOrder


def test_workers_finishing_out_of_order_act_in_number_order():
    in_order, done, numbers = InOrder(), [], iter(range(200))
    take = threading.Lock()
    rng = random.Random(0)
    delays = [rng.uniform(0, 0.002) for _ in range(200)]

    def worker():
        while True:
            with take:
                number = next(numbers, None)
            if number is None:
                return
            time.sleep(delays[number])  # inference of varying length
            in_order.run(number, lambda: done.append(number))

    workers = [threading.Thread(target=worker) for _ in range(3)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in workers)
    assert done == list(range(200))


def test_an_action_that_raises_still_passes_the_turn_on():
    in_order, done = InOrder(), []
    later = threading.Thread(target=lambda: in_order.run(1, lambda: done.append(1)))
    later.start()

    def fail():
        raise RuntimeError("publisher gone")
    with pytest.raises(RuntimeError, match="publisher gone"):
        in_order.run(0, fail)
    later.join(timeout=5)
    assert done == [1]


def test_close_releases_a_worker_waiting_for_a_turn_that_never_comes():
    in_order, result = InOrder(), []
    waiting = threading.Thread(target=lambda: result.append(in_order.run(3, lambda: result.append("ran"))))
    waiting.start()
    time.sleep(0.05)
    assert waiting.is_alive()  # numbers 0-2 never came
    in_order.close()
    waiting.join(timeout=5)
    assert result == [False]
    assert in_order.run(0, lambda: result.append("ran")) is False
