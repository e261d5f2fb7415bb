# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The ``daain`` command line: ``main`` and one thin module per sub-command (argument parsing only)."""
