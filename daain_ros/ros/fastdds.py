# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The packaged Fast DDS profile.

A 16 MB shared-memory segment, so 1024x512 frames at 30 Hz all arrive (best effort with Fast DDS's defaults delivered
about half of them).

Imports neither rclpy nor torch: processes call :func:`use_fastdds_profile` before their first participant.
"""

import os
import sys
from pathlib import Path

FASTDDS_PROFILE_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"
PACKAGE = "daain_ros"


def fastdds_profile():
    """The profile's path: the ament share directory, the venv's share, or the source tree; None if absent."""
    candidates = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, PackageNotFoundError, OSError):
        pass  # no ROS install, or not installed into one: look beside the venv and the sources
    candidates += [Path(sys.prefix) / "share" / PACKAGE, Path(__file__).resolve().parents[2]]
    return next((path / "config" / "fastdds.xml" for path in candidates
                 if (path / "config" / "fastdds.xml").is_file()), None)


def use_fastdds_profile():
    """Points Fast DDS at the packaged profile unless the environment already names one."""
    profile = fastdds_profile()
    if profile is not None:
        os.environ.setdefault(FASTDDS_PROFILE_VAR, str(profile))
    return os.environ.get(FASTDDS_PROFILE_VAR)
