# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``compile``: replayed or compiled, the monitor judges as the eager graph does.

CUDA Graph replay equals eager ESPNet on CUDA; on a CPU ``auto`` and ``off`` change nothing and ``torch-compile``
gives the eager graph's labels and scores.
"""

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from daain_ros.accelerate import COMPILE_MODES, MAX_GRAPHS, GraphReplay, accelerate, resolve_compile
from daain_ros.bench.variants import procedural_frames
from daain_ros.demo.default_assets import DEFAULT_DIR, MODEL_FILE, default_model_path
from daain_ros.demo.drive import default_detector_path
from daain_ros.errors import DaainError
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import load_espnet

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def frames(batch, seed=0):
    return torch.randn(batch, 3, 256, 512, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_auto_and_off_leave_the_module_itself_on_a_cpu(mode):
    net = load_espnet(DEFAULT_DIR / MODEL_FILE, torch.device("cpu")).net
    assert resolve_compile(mode, "cpu") == "off"
    assert accelerate(net, mode, torch.device("cpu")) is net


def test_unknown_or_impossible_modes_are_refused_naming_the_choices():
    with pytest.raises(DaainError, match="compile 'jit': expected one of " + ", ".join(COMPILE_MODES)):
        resolve_compile("jit", "cpu")
    with pytest.raises(DaainError, match="compile 'cuda-graph' on device cpu: expected a CUDA device"):
        accelerate(torch.nn.Identity(), "cuda-graph", "cpu")


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on a CPU needs a C++ compiler (g++)")
def test_torch_compile_on_a_cpu_gives_the_eager_graphs_labels_and_scores_from_one_thread_or_two():
    """The default model and detector at 512x256, frame by frame as the node's ``compile: torch-compile`` on a CPU.

    It compiles at the first frame (about 20 s here); the node's two workers then share the compiled graph.
    """
    frames = procedural_frames(4, (960, 540), seed=8)
    eager = Pipeline.load(default_model_path(), default_detector_path(), "cpu", compile="off")
    compiled = Pipeline.load(default_model_path(), default_detector_path(), "cpu", compile="torch-compile")
    assert hasattr(compiled.backend.graph, "_orig_mod")  # torch.compile's wrapper, not the graph itself
    expected = [eager.infer([frame]) for frame in frames]
    one_by_one = [compiled.infer([frame]) for frame in frames]  # the first compiles, as the node's warm-up frame
    with ThreadPoolExecutor(max_workers=2) as workers:
        concurrent = list(workers.map(lambda frame: compiled.infer([frame]), frames * 2))
    for (labels, scores), (compiled_labels, compiled_scores) in zip(expected * 3, one_by_one + concurrent):
        assert torch.equal(compiled_labels, labels)
        torch.testing.assert_close(compiled_scores, scores, rtol=1e-5, atol=0)


@pytest.fixture(scope="module")
def cuda_net():
    return load_espnet(DEFAULT_DIR / MODEL_FILE, torch.device("cuda")).net


@CUDA
def test_auto_on_cuda_captures_graphs_that_replay_the_eager_outputs(cuda_net):
    replay = accelerate(cuda_net, "auto", torch.device("cuda"))
    assert isinstance(replay, GraphReplay)
    with torch.inference_mode():
        for batch in (1, 2, 1):
            x = frames(batch, seed=batch).cuda()
            torch.testing.assert_close(replay(x), cuda_net(x), atol=1e-4, rtol=1e-4)
    assert replay.shapes == [(1, 3, 256, 512), (2, 3, 256, 512)]


@CUDA
def test_a_result_outlives_the_next_replay_and_replay_never_syncs(cuda_net):
    replay = GraphReplay(cuda_net)
    first_input, second_input = frames(1, seed=1).cuda(), frames(1, seed=2).cuda()
    first = replay(first_input)
    expected = first.clone()
    torch.cuda.set_sync_debug_mode("error")
    try:
        second = replay(second_input)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(first, expected, atol=0, rtol=0)
    assert not torch.equal(first, second)


@CUDA
def test_shapes_beyond_the_cap_run_eagerly(cuda_net):
    replay = GraphReplay(cuda_net)
    with torch.inference_mode():
        for batch in range(1, MAX_GRAPHS + 2):
            x = frames(batch).cuda()
            torch.testing.assert_close(replay(x), cuda_net(x), atol=1e-4, rtol=1e-4)
    assert len(replay.shapes) == MAX_GRAPHS


@CUDA
def test_a_cuda_frame_waits_for_the_device_only_at_its_result_copy():
    """Camera frame in, (train ids, score) on the device out: no call on the way synchronises with the host."""
    pipeline = Pipeline.load(DEFAULT_DIR / MODEL_FILE, DEFAULT_DIR / "detector", "cuda")
    frame = np.random.default_rng(0).integers(0, 256, (540, 960, 3), np.uint8)
    expected = pipeline.process([frame])[0]  # captures the graph
    torch.cuda.set_sync_debug_mode("error")
    try:
        labels, scores = pipeline.infer([frame])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    np.testing.assert_array_equal(labels[0].cpu().numpy(), expected.labels)
    assert float(scores[0]) == pytest.approx(expected.score, rel=1e-5)
