# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bench``: what DAAIN costs on top of ESPNet, in time and memory, in one process, in the node and to fit."""
