# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The QoS names and profiles the node, bag play and bag record share, so a setting means the same in each."""

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

#: What a ``reliability`` parameter or ``--qos`` option names: best effort (sensor data) or reliable.
RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
#: A state topic (``daain/anomaly``): a subscriber that joins late still gets the current value.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: The longest the node goes without asserting that its flag is alive (it does so every second, and with every flag).
LIVELINESS_LEASE_S = 3.0
#: ``daain/anomaly`` as the node offers it: latched, and alive only while the node itself says so. A process
#: that died, and a node whose executor is stuck, lose it within the lease; DDS's automatic liveliness would be
#: asserted by its threads in a stuck process (test_node_liveliness.py's stuck-executor test failed with it,
#: tried by hand). A subscriber asking for a lease of at least this long gets liveliness events; one asking
#: for none (LATCHED) is compatible too.
FLAG = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                  liveliness=LivelinessPolicy.MANUAL_BY_TOPIC,
                  liveliness_lease_duration=Duration(seconds=LIVELINESS_LEASE_S))
