# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""ament_pep257 over the package: the Google docstring convention, with ament's allowance for missing docstrings.

Google's convention is pydocstyle's own: descriptive summaries ("Loads the model.") and the summary on the
first line, as this package writes them; D100-D107 (missing docstrings) are off as in ament's convention.
"""

import pytest
from lint_paths import PATHS

ament_pep257 = pytest.importorskip(
    "ament_pep257.main", reason="ament_pep257 comes with a ROS 2 install, or from ../shared/ros2 with `make setup`")
MISSING_DOCSTRINGS = "D100,D101,D102,D103,D104,D105,D106,D107"


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = ament_pep257.main(argv=["--convention", "google", "--add-ignore", MISSING_DOCSTRINGS, "--", *PATHS])
    assert rc == 0, "Found code style errors / warnings"
