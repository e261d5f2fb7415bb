# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What a score is judged against: a finite threshold, given or calibrated.

No score exceeds an infinite threshold, and an uncalibrated detector's is infinite: a monitor judging against
one would never flag a frame. Without torch, so the fleet driver and the node's parameter checks can use it.
"""

import math

from daain_ros.errors import DaainError


def check_threshold(value):
    """``value`` when it is a threshold a score can be judged against; inf and NaN raise ``DaainError``.

    No score exceeds an infinite threshold, so it would silence the flag for every frame that can be judged.
    """
    if not math.isfinite(value):
        raise DaainError(f"threshold {value}: expected a finite score (none exceeds inf: no frame would be flagged)")
    return value


def judging_threshold(detector, threshold=None):
    """``threshold``, or without one the detector's calibrated threshold; either must be finite.

    A detector that was never calibrated has an infinite threshold (``daain fit`` calibrates it): judged
    against it, no frame would ever be flagged.
    """
    if threshold is not None:
        return check_threshold(float(threshold))
    calibrated = float(detector.threshold)
    if not math.isfinite(calibrated):
        raise DaainError(f"the detector's threshold is {calibrated}: it was never calibrated ('daain fit' "
                         "calibrates it); give a threshold")
    return calibrated
