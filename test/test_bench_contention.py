# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The node benchmark's contention runs: their settings; competing processes on the given cores, always killed."""

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="the node benchmark needs rclpy (a ROS 2 install or the venv's wheels)")

from daain_ros.bench.node import (BUSY_LOOP, competing_processes, contention_settings,  # noqa: E402 (after the skip)
                                  contention_threads)
from daain_ros.deploy import BACKENDS  # noqa: E402


def test_busy_loops_run_on_the_given_cores_and_are_killed_when_the_run_fails():
    cpus = {min(os.sched_getaffinity(0))}
    with pytest.raises(RuntimeError, match="a failed run"):
        with competing_processes(2, cpus) as pids:
            assert len(set(pids)) == 2
            for pid in pids:
                assert os.sched_getaffinity(pid) == cpus
                assert _runs_busy_loop(pid)
            raise RuntimeError("a failed run")
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"busy loop {pid} outlived its run"


def _runs_busy_loop(pid, timeout=30.0):
    """Whether ``pid`` runs the busy loop within ``timeout``.

    A new process reads empty, or as its parent, until it has exec'd, and the venv's Python re-executes itself
    once more to set its library path.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[-2:] == [BUSY_LOOP.encode(), b""]:
            return True
        time.sleep(0.05)
    return False


def test_no_competitor_starts_nothing():
    with competing_processes(0) as pids:
        assert pids == []


def test_contention_tries_one_thread_and_one_per_core():
    cpus = os.sched_getaffinity(0)
    assert contention_threads() == sorted({1, len(cpus)})
    try:
        os.sched_setaffinity(0, {min(cpus)})
        assert contention_threads() == [1]  # one core: one setting, not the same one twice
    finally:
        os.sched_setaffinity(0, cpus)


def test_contention_adds_torch_compiled_settings_only_when_the_run_compiles():
    plain = contention_settings(quick=False)
    assert {mode for *_, mode in plain} == {"auto"} and {backend for backend, *_ in plain} == set(BACKENDS)
    assert contention_settings(quick=False, compiled=True) == plain + [("torch", 1, 1, "torch-compile"),
                                                                       ("torch", 2, 1, "torch-compile")]
    assert contention_settings(quick=True, compiled=True) == [("torch", 1, 1, "auto")]  # quick: one setting
