# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Frames in and out without torch: images, the sensor_msgs image codec, data sources, rosbag2 and labels."""
