# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The node's parameters: the config file lists each with its default, and configure refuses bad values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("rclpy", reason="the node's settings need rclpy (a ROS 2 install or the venv's wheels)")

from daain_ros.errors import DaainError  # noqa: E402 (after the skip)
from daain_ros.ros.model import resolve_workers  # noqa: E402
from daain_ros.ros.settings import PARAMETERS, Settings  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "detector.yaml"


def read(**changes):
    values = {name: default for name, (default, _) in PARAMETERS.items()}
    values.update(model_path="m.pth", detector_path="detector", **changes)
    return Settings.read(values.__getitem__)


def test_config_file_sets_every_parameter_to_its_default():
    config = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    assert config == {name: default for name, (default, _) in PARAMETERS.items()}


def test_backend_threads_and_compile_are_read():
    settings = read(backend="onnxruntime", threads=2, compile="off")
    assert (settings.backend, settings.threads, settings.compile) == ("onnxruntime", 2, "off")
    defaults = read()
    assert (defaults.backend, defaults.threads, defaults.onnx_path) == ("auto", 0, "")


@pytest.mark.parametrize("changes, message", [
    (dict(backend="tensorrt"), "parameter backend='tensorrt': expected one of auto, torch, onnxruntime"),
    (dict(compile="jit"), "parameter compile='jit': expected one of auto, off, cuda-graph, torch-compile"),
    (dict(threads=-1), r"parameter threads=-1: expected 0 \(the default\) or more"),
    (dict(workers=-2), r"parameter workers=-2: expected 0 \(the default\) or more"),
    (dict(stale_timeout=0.0), "parameter stale_timeout=0.0: expected a finite number of seconds > 0"),
    (dict(stale_timeout=float("inf")), "parameter stale_timeout=inf: expected a finite number of seconds > 0"),
    (dict(max_latency=-1.0), "parameter max_latency=-1.0: expected a finite number of seconds > 0"),
    (dict(max_latency=float("inf")), "parameter max_latency=inf: expected a finite number of seconds > 0"),
    (dict(threshold=float("inf")), "threshold inf: expected a finite score"),
    (dict(threshold=float("nan")), "threshold nan: expected a finite score"),
    (dict(workers=2, device="cuda"), "parameter workers=2 on CUDA: expected 0 or 1" if torch.cuda.is_available()
     else "device 'cuda' requested but CUDA is not available"),
])
def test_bad_values_are_refused_in_one_line_naming_them(changes, message):
    with pytest.raises(DaainError, match=message):
        resolve_workers(read(**changes))


def test_on_a_cpu_two_workers_judge_frames_unless_told_otherwise():
    cpu = dict(device="cpu")
    assert resolve_workers(read(**cpu)) == (2 if len(os.sched_getaffinity(0)) > 1 else 1)
    assert resolve_workers(read(workers=1, **cpu)) == 1
    assert resolve_workers(read(workers=3, threads=2, **cpu)) == 3
    assert resolve_workers(read(backend="onnxruntime", device="auto")) == resolve_workers(read(**cpu))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_one_worker_judges_the_frames():
    assert resolve_workers(read(device="cuda")) == 1


def test_node_sets_a_passive_openmp_wait_policy_before_torch_loads():
    """GNU OpenMP reads OMP_WAIT_POLICY once, when torch loads; the node's module sets it first, unless given."""
    code = ("import os, sys; import daain_ros.ros; loaded = 'torch' in sys.modules; import daain_ros.ros.node; "
            "print(loaded, os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "ACTIVE"]
