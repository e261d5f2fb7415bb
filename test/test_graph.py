# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The one-graph monitor gives what the hook path gives: the same labels, scores within 1e-5, the same gradients."""

import pytest
import torch

from daain_ros.accelerate import GraphReplay
from daain_ros.bench.hooks import HookedMonitor, HookedStep
from daain_ros.bench.runner import fresh_detector
from daain_ros.bench.variants import procedural_frames
from daain_ros.demo.default_assets import default_model_path
from daain_ros.demo.drive import default_detector_path
from daain_ros.detector.artifact import load_detector
from daain_ros.detector.graph import monitored_network
from daain_ros.detector.monitor import ActivationMonitor
from daain_ros.detector.sampling_key import LayerShape, SamplingKey
from daain_ros.errors import DaainError
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import ESPNet, SegmentationModel, load_espnet
from daain_ros.segmentation.preprocess import preprocess

CAMERA = (960, 540)  # frames at camera size: the comparison includes the resize


def _assert_same_as_hooks(model, detector, frames):
    """Graph and hooks on the same preprocessed batch: labels identical, scores within 1e-5 relative."""
    graph = monitored_network(model, detector)
    hooks = HookedStep(model, detector)
    try:
        expected_labels, expected_scores = hooks(frames)
    finally:
        hooks.remove()
    with torch.inference_mode():
        labels, scores = graph(preprocess(frames, detector.key.size, model.device))
    assert labels.dtype == torch.uint8 and labels.shape == expected_labels.shape
    assert torch.equal(labels, expected_labels)
    torch.testing.assert_close(scores, expected_scores, rtol=1e-5, atol=0)


def test_graph_equals_hooks_on_the_default_model_and_detector():
    model = load_espnet(default_model_path())
    _assert_same_as_hooks(model, load_detector(default_detector_path(), model), procedural_frames(2, CAMERA, seed=3))


@pytest.mark.parametrize("checkpoint", ["espnet_p_2_q_3.pth", "espnet_p_2_q_5.pth", "espnet_p_2_q_8.pth",
                                        "espnet_c_p_2_q_8.pth"])
def test_graph_equals_hooks_on_official_checkpoints(espnet_dir, checkpoint):
    """Full ESPNets and ESPNet-C (whose 1/8 logits the graph upsamples), a seeded key over every leaf layer."""
    model = load_espnet(espnet_dir / checkpoint)
    _assert_same_as_hooks(model, fresh_detector(model, (512, 256), dims=1000), procedural_frames(2, CAMERA, seed=4))


def _tiny_model():
    torch.manual_seed(0)
    return SegmentationModel(ESPNet(p=1, q=1).eval(), None, "0" * 64, 1, 1, True)


def test_gradients_through_the_graph_equal_those_through_the_hooks():
    """An attacker differentiates through ESPNet, the gathers and the detector: both paths give the same gradient."""
    model = _tiny_model()
    detector = fresh_detector(model, (64, 32), dims=200)
    x = torch.randn(2, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    gradients = []
    for monitor in (ActivationMonitor(model, detector.key), HookedMonitor(model, detector.key)):
        x_grad = x.clone().requires_grad_(True)
        logits, activations = monitor(x_grad)
        (detector(activations).sum() + logits.square().mean()).backward()
        gradients.append(x_grad.grad)
    assert gradients[0].abs().sum() > 0
    torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-5, atol=1e-7)


def test_a_key_for_layers_the_model_lacks_is_refused():
    model = _tiny_model()
    key = SamplingKey([[0, 0, 0]], [LayerShape("decoder.missing", 4, 32, 64)], (64, 32), 1.0)
    with pytest.raises(DaainError, match="decoder.missing runs 0 times"):
        ActivationMonitor(model, key)


def test_the_pipeline_runs_the_graph_and_leaves_no_hook_on_the_model():
    pipeline = Pipeline.load(default_model_path(), default_detector_path(), "cpu")
    assert pipeline.backend.name == "torch"
    assert all(not module._forward_hooks for module in pipeline.model.net.modules())
    results = pipeline.process(procedural_frames(1, CAMERA, seed=5))
    assert results[0].labels.shape == (256, 512) and results[0].score == results[0].score
    pipeline.close()
    with pytest.raises(DaainError, match="after close"):
        pipeline.process(procedural_frames(1, CAMERA, seed=5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_graph_eager_and_replayed_equals_the_hooks():
    """The pipeline's CUDA default (the graph replayed as a CUDA graph) and the eager graph, against the hooks."""
    pipeline = Pipeline.load(default_model_path(), default_detector_path(), "cuda")
    assert isinstance(pipeline.backend.graph, GraphReplay)
    frames = procedural_frames(2, CAMERA, seed=3)
    _assert_same_as_hooks(pipeline.model, pipeline.detector, frames)
    hooks = HookedStep(pipeline.model, pipeline.detector)
    try:
        expected_labels, expected_scores = hooks(frames)
    finally:
        hooks.remove()
    for _ in range(2):  # the first call captures, the second replays
        labels, scores = pipeline.infer(frames)
        assert torch.equal(labels, expected_labels)
        torch.testing.assert_close(scores, expected_scores, rtol=1e-5, atol=0)
