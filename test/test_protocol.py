# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The detector protocol.

Fit on the drive's first frames, judge held-out, flipped and noisy ones; and the rosbag replay acceptance run (a bag of
the held-out frames with fog and PGD injected).
"""

import json

import numpy as np
import pytest

from daain_ros.cli.main import main
from daain_ros.detector.artifact import load_detector, save_detector
from daain_ros.detector.fit import FitConfig, fit_detector
from daain_ros.evaluation.corruptions import gaussian_noise
from daain_ros.evaluation.metrics import auroc, flag_rate
from daain_ros.evaluation.protocol import at_network_size
from daain_ros.io.sources import open_source
from daain_ros.pipeline import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def protocol_detector(p2q8, drive_frames, tmp_path_factory):
    """The protocol's fit (frames 0-149, default settings) with key 2.

    With this key the Gaussian NLL ranked one udacity still above every flipped and noisy frame.
    """
    detector = fit_detector(p2q8, drive_frames[0:150], FitConfig(key_seed=2), progress=False)
    return save_detector(detector, tmp_path_factory.mktemp("protocol_detector"), p2q8)


@pytest.fixture(scope="module")
def held_out_scores(p2q8, protocol_detector, drive_frames, footage_dir):
    """Scores of the held-out frames 150-220 and the stills, clean, flipped and noisy."""
    pipeline = Pipeline(p2q8, load_detector(protocol_detector, p2q8))
    try:
        stills = [frame.image for frame in open_source(str(footage_dir / "udacity_p1"))]
        clean = at_network_size(drive_frames[150:221] + stills, pipeline.size)
        rng = np.random.default_rng(0)
        sets = {"clean": clean, "vflip": [np.ascontiguousarray(im[::-1]) for im in clean],
                "noise08": [gaussian_noise(im, 0.08, rng) for im in clean],
                "noise03": [gaussian_noise(im, 0.03, rng) for im in clean]}
        scores = {name: np.array([r.score for r in pipeline.process(images)]) for name, images in sets.items()}
    finally:
        pipeline.close()
    return scores, pipeline.threshold


def test_few_held_out_clean_frames_are_flagged(held_out_scores):
    # a threshold from the 30 validation frames alone flagged 60 % of held-out frames with this key
    scores, threshold = held_out_scores
    assert flag_rate(scores["clean"], threshold) <= 0.1


@pytest.mark.parametrize(("kind", "goal"), [("vflip", 0.99), ("noise08", 0.98), ("noise03", 0.95)])
def test_anomalies_are_separated_and_flagged(held_out_scores, kind, goal):
    scores, threshold = held_out_scores
    assert auroc(scores["clean"], scores[kind]) >= goal
    assert flag_rate(scores[kind], threshold) >= 0.8


def test_bag_with_fog_and_pgd_is_flagged_inside_both_segments(protocol_detector, footage_dir, espnet_dir, tmp_path):
    """The rosbag replay issue's run: frames 150-220 as a bag, fog at 160-180 and PGD (4/255) at 200-210."""
    model, bag, out = espnet_dir / "espnet_p_2_q_8.pth", tmp_path / "drive", tmp_path / "evaluation"
    assert main(["bag", "from-video", str(footage_dir / "solidWhiteRight.mp4"), str(bag), "--frames", "150:221",
                 "--inject", "fog:160-180", "--inject", "pgd:200-210", "--model", str(model)]) == 0
    assert main(["bag", "evaluate", str(bag), "--detector", str(protocol_detector), "--model", str(model),
                 "--out", str(out), "--device", "cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 71 and summary["unreadable"] == 0
    segments = {segment["kind"]: segment for segment in summary["segments"]}
    for kind, frames in (("fog", 20), ("pgd", 10)):
        assert segments[kind]["detected"] and segments[kind]["flagged"] >= frames // 2, segments[kind]
        assert summary["metrics"][kind]["auroc"] >= 0.95
    assert summary["flagged"] - sum(segment["flagged"] for segment in segments.values()) <= 4  # of 41 clean
