"""Process memory: reading a process's resident set, and returning freed heap memory to the system.

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


def process_status_mb(field, pid="self"):
    """``VmRSS`` (resident now), ``VmHWM`` (peak resident) or another kB field of ``/proc/PID/status``, in
    MB; None where /proc has no such process or field (off Linux)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None
