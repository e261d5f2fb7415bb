# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Fuzzing detector_node with 1,000 randomly malformed Image messages: no crash, no normal verdict.

Each message is sent on its own and its verdict awaited by stamp, so every one is judged (none is
skipped as an older waiting frame), and every flag and diagnostic published meanwhile is checked.
"""

import numpy as np
import pytest
from node_harness import frame_msg, running_node
from sensor_msgs.msg import Image

from daain_ros.io.image_codec import DECODABLE_ENCODINGS

MESSAGES = 1000
CHANNELS = {"mono8": 1, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}
OTHER_ENCODINGS = ["yuv422", "16UC1", "mono16", "bayer_rggb8", "32FC1", "8UC3", "RGB8", "", "rgb8 ", "jpeg"]
pytestmark = pytest.mark.slow


def well_formed(msg):
    """The oracle, independent of the node: what a decodable 8-bit Image looks like."""
    channels = CHANNELS.get(msg.encoding)
    return (channels is not None and msg.height > 0 and msg.width > 0 and msg.step >= msg.width * channels
            and len(msg.data) == msg.step * msg.height)


def malformed(rng):
    """A random message that breaks one or more rules: encoding, size, step or data length."""
    encoding = str(rng.choice(sorted(CHANNELS)))
    height, width = int(rng.integers(1, 48)), int(rng.integers(1, 48))
    step = width * CHANNELS[encoding] + int(rng.integers(0, 4))
    size = full = step * height
    for fault in rng.choice(["encoding", "zero", "step", "short", "long", "empty", "huge"],
                            size=int(rng.integers(1, 3)), replace=False):
        if fault == "encoding":
            encoding = str(rng.choice(OTHER_ENCODINGS))
        elif fault == "zero":
            height, width = (0, width) if rng.random() < 0.5 else (height, 0)
        elif fault == "step":
            step = int(rng.integers(0, max(1, width * CHANNELS.get(encoding, 1))))
        elif fault == "short":
            size = int(rng.integers(0, full))
        elif fault == "long":
            size = full + int(rng.integers(1, 64))
        elif fault == "empty":
            size = 0
        else:
            height, width = int(rng.integers(1 << 16, 1 << 31)), int(rng.integers(1 << 16, 1 << 20))
            step = width * 3
    msg = Image(height=height, width=width, encoding=encoding, step=step % (1 << 32),
                data=rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return msg if not well_formed(msg) else malformed(rng)


def test_oracle_agrees_with_the_codec_on_encodings():
    assert sorted(CHANNELS) == sorted(DECODABLE_ENCODINGS)


@pytest.fixture(scope="module")
def node(espnet_dir, fitted_detector, tmp_path_factory):
    with running_node(tmp_path_factory.mktemp("detector_node_fuzz") / "node.log", "daain_fuzz_client",
                      model_path=espnet_dir / "espnet_p_2_q_8.pth", detector_path=fitted_detector, device="cpu",
                      image_reliability="reliable", stale_timeout=5.0) as running:
        yield running


def test_1000_malformed_messages_give_no_crash_and_no_normal_verdict(node, drive_frames):
    process, client = node
    rng = np.random.default_rng(20261125)
    flags, statuses = len(client.anomaly), len(client.statuses)
    for _ in range(MESSAGES):
        verdict = client.verdict(client.send(malformed(rng)), timeout=10.0)
        assert (verdict["level"], verdict["anomaly"]) == ("ERROR", "true"), verdict
        assert process.poll() is None, "detector_node died"
    published = client.statuses[statuses:]
    assert len(published) >= MESSAGES
    assert all(s["level"] in ("ERROR", "STALE") and s["anomaly"] == "true" for s in published)
    assert client.spin_until(lambda: len(client.anomaly) - flags >= MESSAGES, 10.0)
    assert not any(value is False for value in client.anomaly[flags:])
    verdict = client.verdict(client.send(frame_msg(drive_frames[0])))
    assert verdict["message"] != "" and float(verdict["score"]) == float(verdict["score"]), verdict
    assert int(verdict["frames processed"]) == MESSAGES + 1
