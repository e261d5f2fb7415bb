# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The DAAIN detector.

Sampling key, activation gather, standardiser, flow, heads, calibration, fitting and the artifact (safetensors + JSON).

ROS-free core: imports only ``daain_ros.segmentation`` and the shared errors, device and memory helpers.
"""
