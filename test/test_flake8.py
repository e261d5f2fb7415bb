# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""ament_flake8 over the package with the settings in setup.cfg [flake8] (ament's, plus the project's style)."""

import pytest
from lint_paths import PACKAGE, PATHS

ament_flake8 = pytest.importorskip(
    "ament_flake8.main", reason="ament_flake8 comes with a ROS 2 install, or from ../shared/ros2 with `make setup`")


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = ament_flake8.main_with_errors(argv=["--config", str(PACKAGE / "setup.cfg"), *PATHS])
    assert rc == 0, f"Found {len(errors)} code style errors / warnings:\n" + "\n".join(errors)
