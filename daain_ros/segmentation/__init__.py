# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""ESPNet segmentation as published: the network, its official preprocessing, Cityscapes ids and palette.

ROS-free core: imports nothing from the rest of the package.
"""
