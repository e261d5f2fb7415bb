# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The detector artifact: round trip, private file modes, and every refusal path."""

import json
import stat

import numpy as np
import pytest
import torch

from daain_ros.detector.artifact import METADATA, TENSORS, load_detector, read_metadata, save_detector
from daain_ros.errors import DaainError, DetectorFileError
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import load_espnet


@pytest.fixture()
def artifact_copy(fitted_detector, tmp_path):
    for name in (METADATA, TENSORS):
        (tmp_path / name).write_bytes((fitted_detector / name).read_bytes())
    return tmp_path


def test_round_trip_scores_identically(fitted_detector, p2q8, drive_frames, tmp_path):
    detector = load_detector(fitted_detector, p2q8)
    activations = torch.randn(4, detector.key.dims)
    again = load_detector(save_detector(detector, tmp_path / "again", p2q8), p2q8)
    with torch.no_grad():
        torch.testing.assert_close(again(activations), detector(activations))
    np.testing.assert_array_equal(again.key.indices, detector.key.indices)
    assert float(again.threshold) == float(detector.threshold)


def test_metadata_names_what_was_fitted(fitted_detector, p2q8):
    meta = read_metadata(fitted_detector)
    assert meta["segmentation"]["sha256"] == p2q8.sha256
    assert meta["input_size"] == [512, 256] and meta["dims"] == 500
    assert meta["calibration"]["target_fpr"] == 0.01 and "threshold" in meta["calibration"]
    assert {"epochs_run", "best_epoch", "train_frames"} <= set(meta["training"])
    assert "key_seed" not in json.dumps(meta) and "indices" not in json.dumps(meta)


def test_files_are_private(fitted_detector):
    for name in (METADATA, TENSORS):
        assert stat.S_IMODE((fitted_detector / name).stat().st_mode) == 0o600


def test_other_segmentation_weights_are_refused(fitted_detector, espnet_dir):
    other = load_espnet(espnet_dir / "espnet_p_2_q_3.pth")
    with pytest.raises(DetectorFileError, match="fitted for segmentation weights espnet_p_2_q_8.pth"):
        load_detector(fitted_detector, other)


def test_corrupt_metadata_is_refused(artifact_copy, p2q8):
    (artifact_copy / METADATA).write_text("{ not json")
    with pytest.raises(DetectorFileError, match="corrupt detector metadata"):
        load_detector(artifact_copy, p2q8)


def test_unknown_version_is_refused(artifact_copy, p2q8):
    meta = json.loads((artifact_copy / METADATA).read_text())
    meta["format_version"] = 99
    (artifact_copy / METADATA).write_text(json.dumps(meta))
    with pytest.raises(DetectorFileError, match="format version 99, expected 1"):
        load_detector(artifact_copy, p2q8)


def test_corrupt_tensors_are_refused(artifact_copy, p2q8):
    data = (artifact_copy / TENSORS).read_bytes()
    (artifact_copy / TENSORS).write_bytes(data[: len(data) // 2])
    with pytest.raises(DetectorFileError, match="cannot be read"):
        load_detector(artifact_copy, p2q8)


def test_tensors_of_another_detector_are_refused(artifact_copy, p2q8):
    meta = json.loads((artifact_copy / METADATA).read_text())
    meta["flow"]["blocks"] = 4
    (artifact_copy / METADATA).write_text(json.dumps(meta))
    with pytest.raises(DetectorFileError, match="do not match each other"):
        load_detector(artifact_copy, p2q8)


@pytest.mark.parametrize("damage", [
    lambda meta: meta.pop("segmentation"),
    lambda meta: meta.update(segmentation="p2q8"),
    lambda meta: meta.pop("layers"),
    lambda meta: meta.update(layers=[["encoder.level1.conv.conv"]]),
    lambda meta: meta.update(flow={"blocks": "eight"}),
    lambda meta: meta.update(input_size=None),
], ids=["no segmentation", "segmentation not an object", "no layers", "short layer", "flow of strings",
        "no input size"])
def test_malformed_metadata_is_a_detector_file_error(artifact_copy, p2q8, damage):
    meta = json.loads((artifact_copy / METADATA).read_text())
    damage(meta)
    (artifact_copy / METADATA).write_text(json.dumps(meta))
    with pytest.raises(DetectorFileError, match="malformed"):
        load_detector(artifact_copy, p2q8)


def test_missing_detector_is_refused(tmp_path, p2q8):
    with pytest.raises(DetectorFileError, match="no such detector metadata file"):
        load_detector(tmp_path / "nowhere", p2q8)


def test_pipeline_scores_frames(fitted_detector, espnet_dir, drive_frames):
    pipeline = Pipeline.load(espnet_dir / "espnet_p_2_q_8.pth", fitted_detector, device="cpu")
    results = pipeline.process([drive_frames[3], np.ascontiguousarray(drive_frames[3][::-1])])
    assert results[0].labels.shape == (256, 512) and results[0].labels.dtype == np.uint8
    assert results[1].score > results[0].score and results[1].anomalous


def test_a_pipeline_refuses_a_detector_never_calibrated_unless_given_a_threshold(fitted_detector, p2q8, drive_frames):
    detector = load_detector(fitted_detector, p2q8)
    detector.threshold.fill_(float("inf"))  # as DaainDetector starts: no frame would ever be flagged
    with pytest.raises(DaainError, match="threshold is inf: it was never calibrated"):
        Pipeline(p2q8, detector)
    flipped = np.ascontiguousarray(drive_frames[3][::-1])
    assert Pipeline(p2q8, detector, threshold=1.0).process([flipped])[0].anomalous
