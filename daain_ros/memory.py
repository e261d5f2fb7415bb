# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Process and host memory.

The one reader of /proc's ``key: value`` files, and returning freed heap memory to the system.

FrEIA builds every ``AllInOneBlock`` with dense D x D permutation matrices (64 MB at 2,000 dimensions)
that the flow drops at once (``flow.IndexPermutedBlock``). glibc keeps such freed blocks in the
process's heap, so a detector of 8 blocks left 200 MB resident that nothing used; trimming after each
block keeps the resident set within 8 MB of what the flow holds.
"""

import ctypes
import ctypes.util
from pathlib import Path

_LIBC = ctypes.util.find_library("c")


def release_freed_memory():
    """Asks glibc to give freed heap memory back (``malloc_trim``); a no-op without glibc."""
    try:
        trim = ctypes.CDLL(_LIBC).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl) or no C library found
        return False
    return bool(trim(0))


def proc_field(path, key):
    """The value of the first ``key: value`` line of a /proc file, stripped.

    Files: ``/proc/cpuinfo``, ``/proc/meminfo``, ``/proc/PID/status``. None where the file or the key is missing
    (off Linux, a process gone).
    """
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and name.strip() == key:
            return value.strip()
    return None


def _kb_to_mb(value):
    return int(value.split()[0]) / 1024 if value else None


def process_status_mb(field, pid="self"):
    """``VmRSS`` (resident now), ``VmHWM`` (peak resident) or another kB field of ``/proc/PID/status``, in MB.

    None where /proc has no such process or field (off Linux).
    """
    return _kb_to_mb(proc_field(f"/proc/{pid}/status", field))


def meminfo_mb(field):
    """``MemTotal``, ``MemAvailable`` or another kB field of ``/proc/meminfo``, in MB; None off Linux."""
    return _kb_to_mb(proc_field("/proc/meminfo", field))
