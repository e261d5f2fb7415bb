"""Shared fixtures: the data in ../shared (skipped with a reason when absent) and an isolated ROS setup."""

import os
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAAIN_SHARED", REPO.parent / "shared"))
ESPNET_DIR = SHARED / "data" / "espnet"
FOOTAGE_DIR = SHARED / "data" / "footage"

os.environ.setdefault("ROS_LOG_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "daain_ros_test_logs"))
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))


def _require(path):
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data is for developers and CI only)")
    return path


@pytest.fixture(scope="session")
def espnet_dir():
    return _require(ESPNET_DIR)


@pytest.fixture(scope="session")
def footage_dir():
    return _require(FOOTAGE_DIR)


@pytest.fixture(scope="session")
def p2q8(espnet_dir):
    from daain_ros.espnet import load_espnet
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
