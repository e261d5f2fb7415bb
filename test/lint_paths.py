# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What the ament linters check: the package's Python, found from this file, whatever the working directory.

``colcon test`` runs in the package's directory, ``make test`` in the checkout, which also holds the venv.
"""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
PATHS = [str(PACKAGE / name) for name in ("daain_ros", "launch", "test", "setup.py")]
