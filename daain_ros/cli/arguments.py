# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Argument types shared by the ``daain`` sub-commands."""

from fractions import Fraction


def fraction(text):
    """A number or a fraction such as ``4/255`` (attack budgets are written that way)."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{text!r} is not a number or fraction") from exc
