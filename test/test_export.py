# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain export`` and the onnxruntime backend.

The exported graph passes onnx.checker, ONNX Runtime reproduces the torch graph (labels identical, scores within
1e-5), the file is private and bound to its weights and detector, and ``daain score`` runs on it.
"""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import onnx
import pytest
import torch

from daain_ros.bench.runner import fresh_detector
from daain_ros.bench.variants import procedural_frames
from daain_ros.cli import main as cli
from daain_ros.demo.default_assets import default_model_path
from daain_ros.demo.drive import default_detector_path
from daain_ros.deploy.export import FORMAT, detector_sha256
from daain_ros.detector.artifact import METADATA, save_detector
from daain_ros.errors import DaainError, DetectorFileError
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import ESPNet, load_espnet, save_espnet

CAMERA = (960, 540)
pytestmark = pytest.mark.slow  # each export traces the whole monitor (seconds)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model file, detector directory) of a small random ESPNet at 64x32: quick to export."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    save_espnet(ESPNet(p=1, q=1).eval(), folder / "tiny.safetensors", 1, 1)
    model = load_espnet(folder / "tiny.safetensors")
    return folder / "tiny.safetensors", save_detector(fresh_detector(model, (64, 32), dims=100), folder / "det", model)


@pytest.fixture(scope="module")
def torch_pipeline():
    return Pipeline.load(default_model_path(), default_detector_path(), "cpu", threads=1)


def _assert_same(results, expected):
    for result, reference in zip(results, expected, strict=True):
        np.testing.assert_array_equal(result.labels, reference.labels)
        assert result.score == pytest.approx(reference.score, rel=1e-5)


def test_export_is_private_checked_and_bound(exported):
    assert exported.stat().st_mode & 0o777 == 0o600
    proto = onnx.load(str(exported))
    onnx.checker.check_model(proto, full_check=True)
    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props["format"] == FORMAT and props["batch"] == "dynamic" and props["input_size"] == "512x256"
    assert props["segmentation_sha256"] == load_espnet(default_model_path()).sha256
    assert props["detector_sha256"] == detector_sha256(default_detector_path())
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["labels", "scores"]


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_reproduces_the_torch_graph(exported, torch_pipeline, batch):
    """Camera-size frames in batches of one and three (the batch is dynamic), from the exported file."""
    onnx_pipeline = Pipeline.load(default_model_path(), default_detector_path(), backend="onnxruntime",
                                  threads=1, onnx=exported)
    assert onnx_pipeline.backend.name == "onnxruntime" and onnx_pipeline.device.type == "cpu"
    frames = procedural_frames(batch, CAMERA, seed=batch)
    _assert_same(onnx_pipeline.process(frames), torch_pipeline.process(frames))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_one_pipeline_judges_frames_from_two_threads_as_from_one(exported, torch_pipeline, backend):
    """The node's workers share one pipeline: frames judged concurrently come out as when judged one by one."""
    pipeline = torch_pipeline if backend == "torch" else Pipeline.load(
        default_model_path(), default_detector_path(), backend="onnxruntime", threads=1, onnx=exported)
    frames = procedural_frames(8, CAMERA, seed=5)
    expected = pipeline.process(frames)
    with ThreadPoolExecutor(max_workers=2) as workers:
        results = list(workers.map(lambda frame: pipeline.process([frame])[0], frames * 3))
    _assert_same(results, expected * 3)


def test_a_graph_exported_in_memory_reproduces_the_torch_graph(tiny):
    frames = procedural_frames(2, CAMERA, seed=7)
    expected = Pipeline.load(*tiny, "cpu", threads=1).process(frames)
    _assert_same(Pipeline.load(*tiny, backend="onnxruntime", threads=1).process(frames), expected)


def test_another_detector_is_refused(exported, tmp_path):
    """A detector of the same weights whose files differ (another threshold) does not match the export."""
    other = tmp_path / "detector"
    shutil.copytree(default_detector_path(), other)
    meta = json.loads((other / METADATA).read_text())
    meta["threshold"] += 1.0
    (other / METADATA).write_text(json.dumps(meta))
    with pytest.raises(DetectorFileError, match="another detector"):
        Pipeline.load(default_model_path(), other, backend="onnxruntime", onnx=exported)


def test_other_weights_are_refused(exported, tmp_path):
    """An export whose recorded weights are not the model's: refused before any frame runs."""
    proto = onnx.load(str(exported))
    for prop in proto.metadata_props:
        if prop.key == "segmentation_sha256":
            prop.value = "0" * 64
    tampered = tmp_path / "tampered.onnx"
    tampered.write_bytes(proto.SerializeToString())
    with pytest.raises(DetectorFileError, match="exported for segmentation weights"):
        Pipeline.load(default_model_path(), default_detector_path(), backend="onnxruntime", onnx=tampered)


def test_an_export_of_an_earlier_format_version_is_refused(exported, tmp_path):
    """Version 1 graphs lack the cauchy head's limit: they are refused with the way out, not run."""
    proto = onnx.load(str(exported))
    for prop in proto.metadata_props:
        if prop.key == "format_version":
            prop.value = "1"
    older = tmp_path / "older.onnx"
    older.write_bytes(proto.SerializeToString())
    with pytest.raises(DetectorFileError, match=r"version '1', expected a daain export .* 2\): export it again"):
        Pipeline.load(default_model_path(), default_detector_path(), backend="onnxruntime", onnx=older)


def test_a_file_that_is_no_onnx_graph_is_refused(tmp_path):
    bogus = tmp_path / "monitor.onnx"
    bogus.write_bytes(b"not a graph")
    with pytest.raises(DetectorFileError, match="ONNX Runtime cannot load it"):
        Pipeline.load(default_model_path(), default_detector_path(), backend="onnxruntime", onnx=bogus)


def test_fixed_batch_and_size_on_a_tiny_model(tiny, tmp_path, capsys):
    """--batch fixes the input's first dimension; a --size other than the fitted one exits 2 with one line."""
    out = tmp_path / "tiny.onnx"
    base = ["export", "--model", str(tiny[0]), "--detector", str(tiny[1]), "--out", str(out)]
    assert cli.main(base + ["--size", "128x64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("daain export: error: size 128x64") and "\n" not in err and not out.exists()
    assert cli.main(base + ["--batch", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["batch"] == "1" and printed["input_size"] == "64x32"
    shape = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in shape] == [1, 3, 32, 64]


def test_score_on_onnxruntime_prints_what_torch_prints(exported, tmp_path, capsys):
    for i, frame in enumerate(procedural_frames(2, CAMERA, seed=11)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frame)
    lines = {}
    for backend in ("torch", "onnxruntime"):
        extra = ["--onnx", str(exported)] if backend == "onnxruntime" else []
        assert cli.main(["score", str(tmp_path), "--model", str(default_model_path()), "--detector",
                         str(default_detector_path()), "--json", "--threads", "1", "--backend", backend, *extra]) == 0
        lines[backend] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines["torch"]) == 2
    for ours, theirs in zip(lines["onnxruntime"], lines["torch"], strict=True):
        assert ours["flag"] == theirs["flag"] and ours["frame"] == theirs["frame"]
        assert ours["score"] == pytest.approx(theirs["score"], rel=1e-5)


@pytest.mark.parametrize("threshold", ["inf", "nan"])
def test_score_refuses_a_threshold_no_score_can_be_judged_against(threshold, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "0.png"), procedural_frames(1, CAMERA, seed=11)[0])
    assert cli.main(["score", str(tmp_path), "--model", str(default_model_path()), "--detector",
                     str(default_detector_path()), "--threshold", threshold, "--backend", "torch"]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and f"threshold {threshold}: expected a finite score" in printed.err


def test_auto_takes_onnxruntime_on_the_cpu(exported):
    pipeline = Pipeline.load(default_model_path(), default_detector_path(), "cpu", backend="auto", onnx=exported)
    assert pipeline.backend.name == "onnxruntime"


def test_onnxruntime_refuses_a_torch_compile_mode():
    with pytest.raises(DaainError, match="compile 'cuda-graph' with backend onnxruntime: expected auto or off"):
        Pipeline.load(default_model_path(), default_detector_path(), "cpu", backend="onnxruntime",
                      compile="cuda-graph")
