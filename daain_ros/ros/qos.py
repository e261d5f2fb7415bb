# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The QoS names and profiles the node, bag play and bag record share, so a setting means the same in each."""

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

#: What a ``reliability`` parameter or ``--qos`` option names: best effort (sensor data) or reliable.
RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
#: A state topic (``daain/anomaly``): a subscriber that joins late still gets the current value.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
