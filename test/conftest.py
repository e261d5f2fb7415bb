# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Shared fixtures: the data in ../shared (skipped with a reason when absent) and an isolated ROS setup."""

import os
import signal
import subprocess
from pathlib import Path

import cv2
import pytest
import torch

from daain_ros.segmentation.subnormal import flush_denormals

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAAIN_SHARED", REPO.parent / "shared"))
ESPNET_DIR = SHARED / "data" / "espnet"
FOOTAGE_DIR = SHARED / "data" / "footage"

os.environ.setdefault("ROS_LOG_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "daain_ros_test_logs"))
# A DDS domain of the suite's own, and one per pytest-xdist worker (gw0 to gw3), so that neither another suite nor
# the suite's other workers see its nodes: workers inherit the controller's ROS_DOMAIN_ID and add their number.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 25 * 4))
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
os.environ["ROS_DOMAIN_ID"] = str(int(os.environ["ROS_DOMAIN_ID"]) + _WORKER)
# The test process shares two cores with node subprocesses: one intra-op thread avoids oversubscription.
torch.set_num_threads(1)
# As every entry point of the package does: subnormal activations never reach the CPU kernels.
flush_denormals()
# A shell script that starts the suite in the background (`make test &`) leaves SIGINT ignored, and every process
# the tests start inherits that: `ros2 launch` then never sees the SIGINT that should end it (two CI runs started
# so failed test_launch). The tests send SIGINT on purpose, so they restore its default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


#: Test files that keep both cores busy for minutes: Ray's local clusters, and the bench's node sweep and contention
#: runs (busy loops on every core). Beside two busy loops the fleet tests ran past their timeouts; as one unit of
#: pytest-xdist's scheduling, the two files run one after the other in one worker while the other takes the rest.
BOTH_CORES = ("test/test_bench.py", "test/test_fleet.py")


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under ``--dist loadfile``, pytest-xdist's file-by-file scheduling with the ``BOTH_CORES`` files as one unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):

        def _split_scope(self, nodeid):
            scope = super()._split_scope(nodeid)
            return " + ".join(BOTH_CORES) if scope in BOTH_CORES else scope

    return Scheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makemodule(module_path, parent):
    """A module-level skip skips its own module only.

    launch_testing's pytest plugin imports every test module while it looks for launch tests; a
    ``pytest.importorskip`` that skips there would otherwise skip the whole test directory.
    """
    try:
        return (yield)
    except pytest.skip.Exception:
        return pytest.Module.from_parent(parent, path=module_path)


def _require(path):
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data is for developers and CI only)")
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The default model and detector exported through ``daain export`` at 512x256, dynamic batch (seconds)."""
    from daain_ros.cli import main as cli
    from daain_ros.demo.default_assets import default_model_path
    from daain_ros.demo.drive import default_detector_path
    out = tmp_path_factory.mktemp("export") / "monitor.onnx"
    assert cli.main(["export", "--model", str(default_model_path()), "--detector", str(default_detector_path()),
                     "--out", str(out), "--size", "512x256"]) == 0
    return out


@pytest.fixture(scope="session")
def head_commit():
    """The full hash of this checkout's HEAD, read by git itself, not by the provenance code under test."""
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout: no commit to compare provenance with")
    return done.stdout.strip()


@pytest.fixture(scope="session")
def espnet_dir():
    return _require(ESPNET_DIR)


@pytest.fixture(scope="session")
def footage_dir():
    return _require(FOOTAGE_DIR)


@pytest.fixture(scope="session")
def p2q8(espnet_dir):
    from daain_ros.segmentation.espnet import load_espnet
    return load_espnet(espnet_dir / "espnet_p_2_q_8.pth")


@pytest.fixture(scope="session")
def drive_frames(footage_dir):
    """All 221 BGR frames of solidWhiteRight.mp4, decoded once per session."""
    capture = cv2.VideoCapture(str(footage_dir / "solidWhiteRight.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


SMALL_FIT = dict(target_dims=500, augment_copies=1, batch_size=8, key_seed=1234)


@pytest.fixture(scope="session")
def fitted_detector(tmp_path_factory, p2q8, drive_frames):
    """A small detector for the official p2q8 at 512x256, fitted on 30 frames of the drive (seconds)."""
    from daain_ros.detector.artifact import save_detector
    from daain_ros.detector.fit import FitConfig, fit_detector
    from daain_ros.detector.flow import FlowConfig
    config = FitConfig(**SMALL_FIT, flow=FlowConfig(epochs=15))
    detector = fit_detector(p2q8, drive_frames[0:150:5], config, progress=False)
    return save_detector(detector, tmp_path_factory.mktemp("detector"), p2q8)


@pytest.fixture(scope="session")
def small_frames():
    """A function of a data source: its frames at 128x64, where the attack tests run the default model."""
    from daain_ros.evaluation.protocol import at_network_size
    from daain_ros.io.sources import open_source

    return lambda spec: at_network_size([frame.image for frame in open_source(spec)], (128, 64))


@pytest.fixture(scope="session")
def default_espnet():
    """The packaged default ESPNet on the CPU."""
    from daain_ros.demo.default_assets import default_model_path
    from daain_ros.segmentation.espnet import load_espnet

    return load_espnet(default_model_path(), "cpu")


@pytest.fixture(scope="session")
def small_fit_frames(small_frames):
    return small_frames("synthetic:3:16")


@pytest.fixture(scope="session")
def small_held_out(small_frames):
    return small_frames("synthetic:9:3")


@pytest.fixture(scope="session")
def typical(default_espnet, small_fit_frames):
    """The key-agnostic attacker's critic of the default model at 128x64, fitted on ``small_fit_frames``."""
    from daain_ros.evaluation.key_agnostic import LayerStatistics, TypicalityCritic

    statistics = LayerStatistics.fit(default_espnet, small_fit_frames, (128, 64))
    return TypicalityCritic(default_espnet, statistics, small_fit_frames)
