# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bench``.

Its reference variant computes what DAAIN computes, its estimates match the measured space, and a quick run writes every
field with per-process memory.
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from daain_ros.bench.runner import BenchConfig, fresh_detector, parse_sizes
from daain_ros.bench.variants import (DaainStep, EspnetStep, ReferenceStep, procedural_frames, ratio_interval,
                                      time_interleaved)
from daain_ros.cli import main as cli
from daain_ros.detector.heads import ScoreHead
from daain_ros.errors import DaainError
from daain_ros.memory import process_status_mb
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import ESPNet, SegmentationModel, load_espnet, save_espnet
from daain_ros.segmentation.preprocess import preprocess

SIZE = (64, 32)


def _random_model(seed=0):
    torch.manual_seed(seed)
    return SegmentationModel(ESPNet(p=1, q=1).eval(), None, "0" * 64, 1, 1, True)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("model") / "espnet_random.safetensors"
    save_espnet(ESPNet(p=1, q=1).eval(), path, 1, 1)
    return path


def test_reference_variant_scores_what_the_pipeline_scores():
    """The benchmark compares equal work: the reference and the hooks give the same activations and scores.

    Upsample-concatenate-index (the reference) and the hooks' direct gather, on a batch of two.
    """
    daain_model, reference_model = _random_model(), _random_model()
    detector = fresh_detector(daain_model, SIZE, dims=300)
    frames = procedural_frames(2, SIZE, seed=5)
    pipeline = Pipeline(daain_model, detector)
    reference = ReferenceStep(reference_model, detector)
    try:
        labels, scores = DaainStep(pipeline)(frames)
        ref_labels, ref_scores = reference(frames)
    finally:
        reference.remove()
    assert torch.equal(labels, ref_labels)
    assert torch.equal(labels, EspnetStep(_random_model(), SIZE)(frames))
    assert torch.isfinite(scores).all() and scores.shape == (2,)
    torch.testing.assert_close(scores, ref_scores, rtol=0, atol=1e-5)


def test_fresh_detector_is_seeded_and_has_the_asked_dims():
    model = _random_model()
    first, second = fresh_detector(model, SIZE, dims=300), fresh_detector(model, SIZE, dims=300)
    assert first.key.dims == 300
    np.testing.assert_array_equal(first.key.indices, second.key.indices)


def test_fresh_detector_at_another_size_keeps_the_templates_fitted_head():
    """A template with a head that must be fitted (hbos): the fresh detector scores with the template's head."""
    model = _random_model()
    template = fresh_detector(model, SIZE, dims=300)
    template.head = ScoreHead("hbos", 300).fit(torch.randn(64, 300, generator=torch.Generator().manual_seed(1)))
    fresh = fresh_detector(model, (128, 64), template)
    assert fresh.key.size == (128, 64) and fresh.key.dims == 300 and fresh.head.kind == "hbos"
    assert torch.equal(fresh.head.log_density, template.head.log_density)
    with torch.no_grad():
        assert torch.isfinite(fresh(torch.randn(2, 300))).all()


def _activation_space(net, frames, size):
    """The reference's activation space built here by hand.

    Every leaf module's output, nearest-upsampled to the input size and stacked along channels.
    """
    outputs, handles = [], []
    for module in net.modules():
        if not any(module.children()) and module is not net:
            handles.append(module.register_forward_hook(lambda _m, _i, out: outputs.append(out)))
    try:
        with torch.inference_mode():
            x = preprocess(frames, size, torch.device("cpu"))
            net(x)
            return torch.cat([nn.functional.interpolate(out, size=x.shape[-2:], mode="nearest")
                              for out in outputs if out.dim() == 4], 1)
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("size,batch", [(SIZE, 2), ((128, 64), 1)])
def test_reference_estimate_is_the_size_of_the_space_the_reference_builds(tmp_path, model_file, size, batch):
    """The bench's estimate for a saved detector is the byte size of the reference's activation space.

    The estimate takes the channels from the detector's metadata, the size and the batch; the space is what the
    reference gather materialises, and the peak estimate scales it.
    """
    from daain_ros.bench.runner import reference_leaf
    from daain_ros.bench.variants import REFERENCE_PEAK_FACTOR
    from daain_ros.detector.artifact import save_detector
    model = load_espnet(model_file)
    detector_dir = save_detector(fresh_detector(model, size, dims=300), tmp_path / "det", model)
    record = reference_leaf(BenchConfig(model=model_file, quick=True), size, batch,
                            torch.device("cpu"), detector_dir, {}, {})
    space = _activation_space(model.net, procedural_frames(batch, size, seed=1), size)
    assert space.shape == (batch, record["channels"], size[1], size[0])
    assert record["space_mb"] == pytest.approx(space.numel() * space.element_size() / 2**20, rel=1e-12)
    assert record["estimated_peak_mb"] == pytest.approx(REFERENCE_PEAK_FACTOR * record["space_mb"])
    assert record["skipped"] == "quick mode"


def test_parse_sizes():
    assert parse_sizes("512x256,1024x512") == ((512, 256), (1024, 512))
    for bad in ("512", "512x255", "axb"):
        with pytest.raises(DaainError):
            parse_sizes(bad)


@pytest.mark.parametrize("args", [["--sizes", "100x50"], ["--skip", "bogus"], ["--frames", "0"]])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, model_file):
    assert cli.main(["bench", "--model", str(model_file), "--out", str(tmp_path / "b.json"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("daain bench: error:") and "\n" not in err
    assert not (tmp_path / "b.json").exists()


def _leaves(tree):
    for size, batches in tree.items():
        if size == "overhead":
            continue
        for batch, devices in batches.items():
            for device, leaf in devices.items():
                yield f"{size}/{batch}/{device}", leaf


@pytest.mark.slow
def test_quick_bench_writes_every_field(tmp_path, model_file):
    """A quick run at a tiny size.

    Every section and field is there, and each variant's peak memory is its own process's, not this (deliberately
    inflated) parent's.
    """
    ballast = np.ones(800 << 17)  # 800 MB touched: a worker reporting ru_maxrss would inherit it
    out = tmp_path / "bench.json"
    code = cli.main(["bench", "--quick", "--sizes", "64x32", "--dims", "200", "--frames", "2",
                     "--model", str(model_file), "--out", str(out)])
    parent_mb = process_status_mb("VmHWM")
    del ballast
    assert code == 0
    result = json.loads(out.read_text())
    assert {"machine", "espnet", "daain", "reference", "node", "fit", "overhead"} <= set(result)
    assert result["machine"]["threads"] >= 1 and result["machine"]["torch"] == torch.__version__
    for variant in ("espnet", "daain"):
        leaves = dict(_leaves(result[variant]))
        assert set(leaves) == {"64x32/batch1/cpu", "64x32/batch8/cpu"}
        for where, leaf in leaves.items():
            assert leaf["median_ms"] > 0 and leaf["p90_ms"] >= leaf["median_ms"], where
            assert 0 < leaf["peak_mb"] < parent_mb - 400, where
            # the frames' own peak restarts after loading: at most the whole-life peak, at least the loaded RSS
            assert 0 < leaf["loaded_mb"] <= leaf["frame_peak_mb"] <= leaf["peak_mb"], where
    for where, leaf in _leaves(result["daain"]):
        assert leaf["overhead"] == pytest.approx(leaf["median_ms"] / result["espnet"]["64x32"][where.split("/")[1]]
                                                 ["cpu"]["median_ms"])
        assert result["overhead"]["64x32"][where.split("/")[1]]["cpu"] == leaf["overhead"]
    assert result["overhead"]["headline"]["ratio"] == result["overhead"]["64x32"]["batch1"]["cpu"]
    assert list(_leaves(result["backends"])) and list(_leaves(result["reference"])), "a section has no cases"
    for where, leaf in _leaves(result["backends"]):
        assert set(leaf["overhead_ci95"]) == set(leaf["overhead"]) and "graph" in leaf["overhead"], where
        # the run's own ratio lies in its interval (with two batches it is the mediant of the two pairs' ratios)
        for name, (low, high) in leaf["overhead_ci95"].items():
            assert low <= leaf["overhead"][name] <= high, (where, name)
    for where, leaf in _leaves(result["reference"]):
        assert {"median_ms", "p90_ms", "peak_mb", "estimated_peak_mb"} <= set(leaf) and leaf["skipped"], where
    node = result["node"]
    assert node["median_ms"] > 0 and node["p90_ms"] >= node["median_ms"] and node["peak_mb"] > 0
    assert node["max_rate_hz"] is None or node["max_rate_hz"] >= 1
    alone = node["espnet_alone"]  # the headline's settings: ONNX Runtime on a CPU, the node's default workers
    assert (alone["backend"], alone["workers"], alone["threads"]) == \
        ("onnxruntime", 2 if len(os.sched_getaffinity(0)) > 1 else 1, 0), alone
    assert alone["frames"] >= alone["workers"] and alone["seconds"] >= 2.0, alone
    at30 = node["at_30hz"]
    assert at30["sent"] == 60 and at30["processed"] + at30["dropped"] == at30["sent"] and at30["processed"] > 0
    # what the node counts as not judged, dropped in its slot or lost before it, is among what the client missed
    assert at30["dropped_by_node"] + at30["lost_before_node"] <= at30["dropped"], at30
    contention = node["contention"]["settings"]  # quick: one setting, idle and beside one busy loop
    assert [(row["backend"], row["workers"], row["threads"], row["compile"]) for row in contention] == \
        [("torch", 1, 1, "auto")], contention
    assert contention[0]["idle"]["median_ms"] > 0 and contention[0]["contended"]["median_ms"] > 0, contention
    fit = result["fit"]
    assert fit["frames"] == 5 and fit["seconds_per_100_frames"] == pytest.approx(fit["seconds"] * 20)
    assert 0 < fit["peak_mb"] < parent_mb - 400


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on a CPU needs a C++ compiler (g++)")
def test_compiled_variants_are_timed_against_espnet_compiled_and_eager_espnet(tmp_path, model_file):
    """The compiled monitor's overhead divides by ESPNet alone compiled the same way.

    It also gets a ratio over eager ESPNet, and it judges as the eager graph does.
    """
    from daain_ros.bench.backends import backend_steps, time_backends
    from daain_ros.detector.artifact import save_detector
    model = load_espnet(model_file)
    detector_dir = save_detector(fresh_detector(model, SIZE, dims=200), tmp_path / "det", model)
    steps = backend_steps(model_file, detector_dir, SIZE, torch.device("cpu"), 1, onnxruntime=False, compiled=True)
    frames = procedural_frames(3, SIZE, seed=9)
    labels, scores = steps["graph"](frames[:1])
    compiled_labels, compiled_scores = steps["graph_compiled"](frames[:1])
    assert torch.equal(compiled_labels, labels) and torch.equal(steps["espnet_compiled"](frames[:1]), labels)
    torch.testing.assert_close(compiled_scores, scores, rtol=1e-5, atol=0)
    leaf, _, _ = time_backends({name: steps[name] for name in ("espnet", "espnet_compiled", "graph_compiled")},
                               frames, 1, 1, torch.device("cpu"))
    assert leaf["overhead"] == {
        "graph_compiled": leaf["graph_compiled"]["median_ms"] / leaf["espnet_compiled"]["median_ms"],
        "graph_compiled_vs_torch_espnet": leaf["graph_compiled"]["median_ms"] / leaf["espnet"]["median_ms"]}
    assert BenchConfig(model_file, quick=True).compile_skipped == "quick mode"
    assert BenchConfig(model_file, skip=("compile",)).compile_skipped == "--skip compile"
    assert BenchConfig(model_file).compile_skipped is None


def test_ratio_interval_resamples_the_interleaved_pairs_together():
    rng = np.random.default_rng(3)
    espnet = 50 + rng.gamma(2.0, 3.0, 60)  # a noisy machine: the pair's times move together
    monitor = espnet * 1.05
    # resampled as pairs every ratio is 1.05 (each list resampled alone gave [1.02, 1.08] on these times)
    assert ratio_interval(monitor, espnet) == pytest.approx([1.05, 1.05])
    noisy = monitor + rng.normal(0, 1.0, 60)
    low, high = ratio_interval(noisy, espnet)
    assert low < 1.05 < high and low > 1.0 and high - low < 0.05
    assert ratio_interval(noisy, espnet) == [low, high]  # seeded
    assert ratio_interval([52.0], [50.0]) is None


@pytest.mark.parametrize("block, runs", [
    (1, "ab ba ab ba ab ba ab"),  # every batch after the other variant's
    (3, "aaabbb bbbaaa a b"),  # most batches after one of the same variant; order still alternating
])
def test_interleaving_runs_each_variant_block_batches_in_a_row_and_records_them_in_order(block, runs):
    calls = []
    steps = {name: (lambda batch, name=name: calls.append((name, batch))) for name in "ab"}
    wall, cpu = time_interleaved(steps, list(range(7)), 2, torch.device("cpu"), block)
    assert "".join(name for name, _ in calls) == runs.replace(" ", "")
    assert [batch for name, batch in calls if name == "a"] == list(range(7))  # each variant: every batch, in order
    assert {name: len(times) for name, times in wall.items()} == {"a": 5, "b": 5}  # after 2 warm-up batches
    assert len(cpu["a"]) == 5


def test_profile_attributes_the_same_convolutions_to_both_variants(tmp_path, model_file):
    """The profile compares like with like: DAAIN runs exactly ESPNet's convolutions, plus its own operators."""
    from daain_ros.bench.profile import profile_hot_path
    from daain_ros.detector.artifact import save_detector
    from daain_ros.detector.graph import monitored_network
    from daain_ros.detector.monitor import gather_samples
    model = load_espnet(model_file)
    detector = fresh_detector(model, SIZE, dims=300)
    detector_dir = save_detector(detector, tmp_path / "det", model)
    result = profile_hot_path(model_file, detector_dir, SIZE, torch.device("cpu"), frames=2)
    rows = {row["op"]: row for row in result["ops"]}
    assert result["daain_total_ms"] > 0 and result["espnet_total_ms"] > 0
    assert rows["aten::convolution"]["daain_calls"] == rows["aten::convolution"]["espnet_calls"] > 0
    assert rows["aten::index_select"]["espnet_calls"] == 0
    reads = monitored_network(model, detector).graph.find_nodes(op="call_function", target=gather_samples)
    assert rows["aten::index_select"]["daain_calls"] >= len(reads) > 0  # one per map read
