# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""detector_node under simulated time (``use_sim_time``, as when a bag is replayed with ``--clock``).

Its watchdog and heartbeat must run on the steady clock: a timer on ROS time stops when ``/clock`` stops (the
bag ends or is paused, or nothing publishes it), and the last verdict, normal or not, would then stand on
``/daain/anomaly`` however long the camera is silent. The node runs in this process, spun by its own executor
on a thread, and a real rclpy client in another context sends frames and records its outputs over DDS; no
``/clock`` is published, so ROS time stays at zero.
"""

import time

import pytest
from node_harness import spun_node

from daain_ros.demo.drive import DEMO_STREET
from daain_ros.io.sources import open_source, parse_frames

pytestmark = pytest.mark.slow


def test_silence_after_frames_is_reported_stale_when_sim_time_stands_still():
    with spun_node("daain_sim_time_client", device="cpu", workers=1, stale_timeout=0.5, image_reliability="reliable",
                   use_sim_time=True) as (_, _, client):
        assert client.spin_until(lambda: client.image_pub.get_subscription_count() > 0, timeout=10.0)
        frame = next(iter(open_source(DEMO_STREET, parse_frames("0:1")))).image  # judged normal by the default
        sent = time.monotonic()  # the node received the frame after this
        assert client.verdict(client.send_frame(frame))["anomaly"] == "false", "the clean frame was not judged normal"
        assert client.spin_until(lambda: client.anomaly and client.anomaly[-1] is False, timeout=5.0)
        judged = len(client.statuses)
        assert client.spin_until(lambda: any(s["message"].startswith("no input on")
                                             for s in client.statuses[judged:]), timeout=5.0), \
            f"no stale diagnostic 5 s after the last frame; got {[s['message'] for s in client.statuses]}"
        assert time.monotonic() - sent >= 0.5, "reported stale before stale_timeout"
        stale = next(s for s in client.statuses[judged:] if s["message"].startswith("no input on"))
        assert stale["level"] == "STALE" and stale["anomaly"] == "true"
        assert client.spin_until(lambda: client.anomaly[-1] is True, timeout=2.0), \
            "the flag stayed lowered while the camera was silent"
