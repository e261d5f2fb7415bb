# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``/daain/anomaly``'s liveliness: a subscriber learns within the lease that the node died or got stuck.

The flag is latched, so without this a safety monitor would keep the last value, "normal" included, of a
node that no longer judges. A real rclpy subscriber asks for the node's lease and records its liveliness
events over DDS; the node runs in this process (its executor stopped to stand for a stuck node) or as its own
process (killed).
"""

import time

import numpy as np
import pytest
from node_harness import Client, spun_node, start_node
from rclpy.event_handler import SubscriptionEventCallbacks
from std_msgs.msg import Bool

from daain_ros.ros.qos import FLAG, LIVELINESS_LEASE_S

pytestmark = pytest.mark.slow


class LivelinessWatch:
    """A subscription to the flag with the node's lease: ``alive`` is the writers' alive count, None before any."""

    def __init__(self, client):
        self.alive = None
        client.node.create_subscription(Bool, "/daain/anomaly", lambda _msg: None, FLAG,
                                        event_callbacks=SubscriptionEventCallbacks(liveliness=self._changed))

    def _changed(self, info):
        self.alive = info.alive_count


def test_the_flag_stays_alive_while_the_node_spins_and_lapses_when_its_executor_stops():
    """Only the heartbeat's assertion keeps the flag alive here.

    The node is active and has judged one frame; its stale_timeout lies far beyond the test, so it publishes no
    flag meanwhile.
    """
    with spun_node("daain_liveliness_client", device="cpu", workers=1, stale_timeout=60.0,
                   image_reliability="reliable") as (_, executor, client):
        watch = LivelinessWatch(client)
        assert client.spin_until(lambda: client.image_pub.get_subscription_count() > 0, 10.0)
        client.verdict(client.send_frame(np.zeros((256, 512, 3), np.uint8)))
        assert client.spin_until(lambda: watch.alive == 1, 10.0), "the flag's writer never became alive"
        flags = len(client.anomaly)
        assert not client.spin_until(lambda: watch.alive != 1, 2 * LIVELINESS_LEASE_S), \
            "the flag's liveliness lapsed while the node spun"
        assert len(client.anomaly) == flags, "a flag was published, so the heartbeat's assertion was not tested"
        stopped = time.monotonic()  # the last assertion came at most a heartbeat (1 s) before this
        executor.shutdown(timeout_sec=5)  # the node and its DDS writer remain; nothing asserts liveliness
        assert client.spin_until(lambda: watch.alive == 0, LIVELINESS_LEASE_S + 3.0), \
            "a stuck node's flag still counted as alive"
        assert time.monotonic() - stopped >= LIVELINESS_LEASE_S - 1.0, "lapsed before the lease ran out"


def test_a_killed_node_loses_the_flags_liveliness_within_the_lease(tmp_path):
    child = start_node(tmp_path / "node.log", device="cpu", autostart=False)
    client = Client("daain_liveliness_kill_client")
    watch = LivelinessWatch(client)
    try:
        assert client.spin_until(lambda: watch.alive == 1, 60.0), "the flag's writer never became alive"
        child.process.kill()
        assert client.spin_until(lambda: watch.alive == 0, LIVELINESS_LEASE_S + 3.0), \
            "a killed node's flag still counted as alive"
    finally:
        client.close()
        child.stop()
