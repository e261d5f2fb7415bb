# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The network input size, without torch: what data sources and bag tools need to know of ESPNet."""

from daain_ros.errors import ImageError

DEFAULT_SIZE = (512, 256)  # (width, height), the DAAIN paper's; the official one is (1024, 512)


def check_network_size(width, height):
    """Both sides must be multiples of 8: ESPNet downsamples three times and concatenates across levels."""
    if width <= 0 or height <= 0 or width % 8 or height % 8:
        raise ImageError(f"network size {width}x{height}: expected positive multiples of 8")
    return int(width), int(height)
