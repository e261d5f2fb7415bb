# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""detector_node's watchdog: an inference worker that dies or hangs raises the flag and names the cause.

No input makes a worker die or hang (the processing edge turns every error into a failed frame), so a bug
is injected where the worker calls it: the node runs in this process, spun by its own executor on a thread as
``detector_node`` spins it, and a real rclpy client in another context sends frames and records
``/daain/anomaly`` and ``/diagnostics`` over DDS.
"""

import threading
import time

import numpy as np
import pytest
from node_harness import spun_node

import daain_ros.ros.judging as judging

pytestmark = pytest.mark.slow


def watched(monkeypatch, broken_infer, stale_timeout, cause, timeout, release=None):
    """Runs an active node whose workers call ``broken_infer``, feeding it frames every 0.1 s (never stale).

    Returns (statuses, flags) that the client got until a diagnostic containing ``cause`` arrived or ``timeout``
    s passed, and the ``time.monotonic()`` at which the loop saw it; sets ``release`` (an event the broken call
    waits on) before the node is torn down.
    """
    monkeypatch.setattr(judging, "infer", broken_infer)
    with spun_node("daain_watchdog_client", device="cpu", workers=1, stale_timeout=stale_timeout,
                   image_reliability="reliable") as (_, _, client):
        try:
            frame = np.random.default_rng(0).integers(0, 256, (256, 512, 3), np.uint8)
            deadline = time.monotonic() + timeout
            while not any(cause in s["message"] for s in client.statuses) and time.monotonic() < deadline:
                client.send_frame(frame)
                client.spin_until(lambda: False, 0.1)
            return list(client.statuses), list(client.anomaly), time.monotonic()
        finally:
            if release is not None:
                release.set()


def test_a_worker_that_dies_raises_the_flag_as_inference_worker_stopped(monkeypatch):
    def bug(pipeline, decode, msg):
        raise RuntimeError("injected bug past the processing edge")
    statuses, flags, _ = watched(monkeypatch, bug, stale_timeout=2.0, cause="inference worker stopped", timeout=20)
    stopped = [s for s in statuses if "inference worker stopped" in s["message"]]
    assert stopped, f"no 'inference worker stopped' diagnostic in {[s['message'] for s in statuses]}"
    assert stopped[0]["level"] == "ERROR"
    assert flags and all(flags), "the flag was lowered while no frame was judged"
    assert all(s["level"] != "OK" for s in statuses), "a normal verdict while no worker judged"


def test_inference_that_never_returns_raises_the_flag_as_overdue(monkeypatch):
    """With frames arriving (every 0.1 s, not stale at 0.5 s), a frame stuck in inference for 5 s is an ERROR."""
    release, entered = threading.Event(), []

    def hang(pipeline, decode, msg):
        entered.append(time.monotonic())
        release.wait(60)
        raise RuntimeError("released")
    statuses, flags, seen = watched(monkeypatch, hang, stale_timeout=0.5, cause="inference has not returned",
                                    timeout=4 * judging.OVERDUE_S, release=release)
    overdue = [s for s in statuses if "inference has not returned" in s["message"]]
    assert overdue, f"no overdue diagnostic in {[s['message'] for s in statuses]}"
    assert overdue[0]["level"] == "ERROR"
    assert seen - entered[0] >= judging.OVERDUE_S, "reported overdue before inference had run for OVERDUE_S"
    assert flags and all(flags), "the flag was lowered while no frame was judged"
