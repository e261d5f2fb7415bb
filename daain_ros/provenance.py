# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Where a result came from: date, commit, machine and command line, recorded by every producer of results.

``daain bench``, ``daain evaluate`` and ``daain demo`` store :func:`provenance` in their JSON, so a table
in ``docs/results.md`` always says on what, when and how it was measured (a 2-core machine under load
and an idle workstation give other timings; a CPU without flush-to-zero other ones again).
"""

import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from daain_ros.memory import meminfo_mb, proc_field

CPU_FLAGS = ("avx2", "avx512f")


def provenance(argv=None):
    """The record every producer stores under ``"provenance"``: date, commit, command line and machine.

    :param argv: the command line to record; default ``sys.argv`` (the exact one the user typed).
    """
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": git_commit(),
            "command": list(sys.argv if argv is None else argv), "machine": machine()}


def machine():
    """What the machine is: CPU model and the flags that decide kernel speed, cores, memory, and so on.

    Also the library versions, the flush-to-zero setting and the load average (1, 5, 15 min) when asked.
    """
    return {"host": platform.node(), "platform": platform.platform(),
            "cpu": proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
            **cpu_generation(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
            "memory_mb": meminfo_mb("MemTotal"), "python": platform.python_version(), "numpy": np.__version__,
            **_torch_facts(), "load_average": _load_average()}


def _torch_facts():
    """The torch version, CUDA device and flush-to-zero setting, without loading torch where it is not loaded.

    A process that never loads torch (the fleet driver, whose workers record their own) gives the installed
    version only.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return {"torch": metadata.version("torch"), "cuda_device": None, "flush_denormal": None}
    from daain_ros.segmentation.subnormal import flushing

    return {"torch": torch.__version__, "flush_denormal": flushing(),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def machine_info(threads, devices):
    """``daain bench``'s ``"machine"``: :func:`machine` plus its threads, devices and start time."""
    info = {**machine(), "threads": threads, "devices": list(devices), "load_average_start": _load_average(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": git_commit()}
    if "cuda" not in devices:
        info.pop("cuda_device")
    return info


def cpu_generation():
    """The CPU's family, model number and clock in MHz as read now (from /proc/cpuinfo; {} elsewhere).

    A virtual machine's model name can be just "AMD EPYC" for a 2 GHz Zen 1 and a Zen 5 alike, whose ESPNet
    frame times differ 4x; family and model tell them apart. The clock is the current one: with frequency
    scaling it is not the CPU's rated clock.
    """
    family, model, mhz = (proc_field("/proc/cpuinfo", key) for key in ("cpu family", "model", "cpu MHz"))
    if family is None or model is None:
        return {}
    return {"cpu_family": int(family), "cpu_model": int(model), "cpu_mhz": round(float(mhz)) if mhz else None}


def cpu_flags():
    """The CPU flags that decide kernel speed here: AVX2, AVX-512F (from /proc/cpuinfo; {} elsewhere)."""
    flags = set((proc_field("/proc/cpuinfo", "flags") or "").split())
    return {flag: flag in flags for flag in CPU_FLAGS} if flags else {}


def git_commit(where=None):
    """The short commit of the checkout this package runs from, or None (an installed copy, no git).

    ``-dirty`` follows it when tracked files differ from that commit: the result was not measured on it.
    ``where``: a directory of another checkout.
    """
    cwd = where or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=cwd)
        commit = out.stdout.strip()
        if not commit:
            return None
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], capture_output=True, timeout=10, cwd=cwd)
        return commit + ("-dirty" if changed.returncode == 1 else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def _load_average():
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def command_line(argv):
    """A recorded ``sys.argv`` as the user would type it: ``daain evaluate --detector ...``."""
    if not argv:
        return None
    program = Path(argv[0]).name
    if Path(argv[0]).parts[-2:] == ("cli", "main.py"):  # python -m daain_ros.cli.main
        program = "daain"
    return shlex.join([program, *argv[1:]])


def markdown_lines(record):
    """The provenance of a result as markdown bullet lines (date, commit, machine, command)."""
    if not record:
        return ["- provenance: not recorded (this result was written before its producer recorded it)"]
    command = command_line(record.get("command"))
    return [f"- date: {record.get('date') or 'unknown'}",
            f"- commit: {record.get('commit') or 'unknown'}",
            f"- machine: {describe_machine(record.get('machine') or {})}",
            f"- command: `{command}`" if command else "- command: unknown"]


def describe_cpu(info):
    """The CPU's name, with its family, model and clock where recorded."""
    cpu = info.get("cpu") or "unknown CPU"
    if info.get("cpu_family") is None:
        return cpu
    clock = f", clock {info['cpu_mhz'] / 1000:.1f} GHz when recorded" if info.get("cpu_mhz") else ""
    return f"{cpu} (family {info['cpu_family']} model {info['cpu_model']}{clock})"


def describe_machine(info):
    """One line: CPU (model, family, number, clock), cores, flags, memory, GPU, torch, flush-to-zero and load."""
    flags = info.get("cpu_flags") or {}
    parts = [describe_cpu(info), f"{info.get('cpu_count') or '?'} logical CPUs"]
    if flags:
        parts.append("flags " + " ".join(name if present else f"no-{name}" for name, present in flags.items()))
    if info.get("memory_mb"):
        parts.append(f"{info['memory_mb'] / 1024:.1f} GiB")
    if info.get("cuda_device"):
        parts.append(f"GPU {info['cuda_device']}")
    if info.get("torch"):
        parts.append(f"torch {info['torch']}")
    if info.get("flush_denormal") is not None:
        parts.append(f"flush-to-zero {'on' if info['flush_denormal'] else 'off'}")
    load = info.get("load_average")
    if load:
        parts.append("load average " + " / ".join(f"{value:.2f}" for value in load) + " (1 / 5 / 15 min)")
    return ", ".join(parts)
