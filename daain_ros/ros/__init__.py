# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Everything that speaks ROS 2: the detector node, its health and debouncing, DDS settings, bag play and record.

The only subpackage that imports rclpy.
"""
