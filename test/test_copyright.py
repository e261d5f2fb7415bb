# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""ament_copyright over the package: every Python file carries the copyright notice and the MIT license."""

import pytest
from lint_paths import PATHS

ament_copyright = pytest.importorskip(
    "ament_copyright.main", reason="ament_copyright comes with a ROS 2 install, or from ../shared/ros2 with "
                                   "`make setup`")


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    rc = ament_copyright.main(argv=PATHS)
    assert rc == 0, "Found errors"
