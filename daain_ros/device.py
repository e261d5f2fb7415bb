# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Device selection: ``auto`` takes CUDA when present; an explicit device that is missing is an error."""

import torch

from daain_ros.errors import DaainError


def resolve_device(name="auto"):
    """Returns the ``torch.device`` for ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DaainError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DaainError(f"device {name!r} requested but CUDA is not available (use 'auto' or 'cpu')")
    return device
