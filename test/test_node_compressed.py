# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""detector_node with ``image_transport: compressed``: JPEG/PNG frames on ``image/compressed``."""

import numpy as np
import pytest
from node_harness import running_node
from sensor_msgs.msg import CompressedImage

from daain_ros.io.image_codec import decode_compressed, encode_compressed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(espnet_dir, fitted_detector, tmp_path_factory):
    with running_node(tmp_path_factory.mktemp("detector_node_compressed") / "node.log", "daain_compressed_client",
                      model_path=espnet_dir / "espnet_p_2_q_8.pth", detector_path=fitted_detector, device="cpu",
                      image_reliability="reliable", image_transport="compressed", stale_timeout=5.0) as running:
        yield running


def test_compressed_frames_are_judged_like_their_decoded_pixels(node, espnet_dir, fitted_detector, drive_frames):
    from daain_ros.pipeline import Pipeline
    process, client = node
    pipeline = Pipeline.load(espnet_dir / "espnet_p_2_q_8.pth", fitted_detector, device="cpu")
    for fmt in ("png", "jpeg"):
        msg = CompressedImage(**encode_compressed(drive_frames[10], fmt))
        expected = pipeline.process([decode_compressed(msg.format, msg.data)])[0]
        verdict = client.verdict(client.send(msg))
        segmentation = client.segmentation[verdict["frame stamp"]]
        labels = np.frombuffer(segmentation.data, np.uint8).reshape(segmentation.height, segmentation.width)
        assert float(verdict["score"]) == pytest.approx(expected.score, rel=1e-4, abs=1e-4)
        assert (labels == expected.labels).mean() > 0.999


@pytest.mark.parametrize("data", [b"", b"not an image", bytes(range(256)) * 4])
def test_undecodable_compressed_data_raises_the_flag(node, data):
    process, client = node
    verdict = client.verdict(client.send(CompressedImage(format="jpeg", data=data)))
    assert (verdict["level"], verdict["anomaly"]) == ("ERROR", "true"), verdict
    assert verdict["message"].startswith("cannot judge frame") and process.poll() is None
