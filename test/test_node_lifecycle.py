# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""detector_node as a managed node, with the packaged default model and detector.

One node process started with ``autostart: false`` and a missing model is driven through its lifecycle
by a real rclpy client over its lifecycle and parameter services; the tests run in file order, each
starting in the state the previous one left. Another node process autostarts with an export at configure;
the last tests build the node in this process to check that cleanup frees the model.
"""

import gc
import threading
import time
import weakref

import numpy as np
import pytest
import rclpy
import torch
from node_harness import DETECTOR, MODEL, Client, in_process_node, start_node
from rclpy.context import Context
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from daain_ros.pipeline import Pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def managed(tmp_path_factory):
    """(process, client, log path, missing model path) of a node waiting unconfigured."""
    log = tmp_path_factory.mktemp("detector_node_lifecycle") / "node.log"
    missing = log.parent / "missing.safetensors"
    child = start_node(log, autostart=False, model_path=missing, detector_path=DETECTOR, device="cpu",
                       image_reliability="reliable", stale_timeout=5.0)
    client = Client("daain_lifecycle_client")
    try:
        assert client.spin_until(lambda: child.process.poll() is not None or client.anomaly, 60), "no flag"
        yield child.process, client, log, missing
    finally:
        client.close()
        child.stop()


def last_status(client, since):
    assert client.spin_until(lambda: len(client.statuses) > since, 10.0), "no diagnostic"
    return client.statuses[-1]


def judged(client):
    """Sends a frame and returns its verdict."""
    frame = np.random.default_rng(len(client.statuses)).integers(0, 256, (256, 512, 3), np.uint8)
    return client.verdict(client.send_frame(frame), timeout=30.0)


def test_unconfigured_node_raises_the_flag_and_takes_no_frames(managed):
    process, client, log, _ = managed
    assert client.lifecycle_state() == "unconfigured"
    status = last_status(client, 0)
    assert (status["level"], status["message"]) == ("STALE", "not judging: unconfigured")
    assert set(client.anomaly) == {True}
    assert client.image_pub.get_subscription_count() == 0


def test_failed_configure_logs_one_line_and_stays_unconfigured(managed):
    process, client, log, missing = managed
    statuses = len(client.statuses)
    assert not client.transition("configure")
    assert client.lifecycle_state() == "unconfigured" and process.poll() is None
    status = last_status(client, statuses)
    assert status["level"] == "ERROR" and status["message"].startswith(f"cannot start: {missing}"), status
    assert client.anomaly[-1] is True
    errors = [line for line in log.read_text().splitlines() if "ERROR" in line or "FATAL" in line]
    assert len(errors) == 1 and "cannot start" in errors[0] and str(missing) in errors[0], errors


def test_configure_activate_deactivate_and_activate_again(managed):
    process, client, log, _ = managed
    assert client.set_parameters(model_path=MODEL).successful  # unconfigured: configure-time parameters change
    assert client.spin_until(lambda: f"set while not configured: model_path {MODEL}; read at the next configure"
                             in log.read_text(), 5.0), log.read_text()[-2000:]
    statuses = len(client.statuses)
    assert client.transition("configure")
    assert client.lifecycle_state() == "inactive"
    assert last_status(client, statuses)["message"].startswith("not judging: inactive")
    assert client.anomaly[-1] is True
    refused = client.set_parameters(stale_timeout=2.0)
    assert not refused.successful and "read at configure" in refused.reason
    assert client.set_parameters(debounce_k=1, debounce_n=2).successful  # run-time parameters change

    assert client.transition("activate")
    assert client.spin_until(lambda: client.image_pub.get_subscription_count() == 1, 10.0)
    verdict = judged(client)
    assert np.isfinite(float(verdict["score"])) and verdict["level"] in ("OK", "WARN", "ERROR"), verdict
    assert client.spin_until(lambda: verdict["frame stamp"] in client.segmentation, 5.0)

    flags, statuses = len(client.anomaly), len(client.statuses)
    assert client.transition("deactivate")
    assert client.lifecycle_state() == "inactive"
    assert client.anomaly_after(flags, True)
    status = last_status(client, statuses)
    assert (status["level"], status["message"]) == ("STALE", "not judging: inactive (deactivated)"), status
    assert client.spin_until(lambda: client.image_pub.get_subscription_count() == 0, 10.0)

    assert client.transition("activate")
    assert np.isfinite(float(judged(client)["score"]))


def test_cleanup_then_shutdown_ends_the_process_cleanly(managed):
    process, client, log, _ = managed
    assert client.transition("deactivate")
    statuses = len(client.statuses)
    assert client.transition("cleanup")
    assert client.lifecycle_state() == "unconfigured"
    assert last_status(client, statuses)["message"] == "not judging: unconfigured (cleaned up)"
    assert client.anomaly[-1] is True
    assert client.transition("shutdown")
    assert process.wait(timeout=15) == 0, log.read_text()[-2000:]
    assert client.anomaly[-1] is True


def test_while_autostart_configures_the_node_answers_get_state_and_keeps_its_heartbeat(tmp_path):
    """While autostart configures, get_state answers "configuring" and the heartbeat goes on; then it is active.

    Backend auto on a CPU exports the monitor for ONNX Runtime at configure, which takes seconds (tens on a
    slow 2-core CPU); autostart runs it beside the executor.
    """
    log = tmp_path / "node.log"
    child = start_node(log, backend="auto", model_path=MODEL, detector_path=DETECTOR, device="cpu")
    client = Client("daain_autostart_client")
    seen = []  # (state, diagnostics received so far), one get_state answer every half second
    try:  # the latched flag comes from the constructor, before autostart
        assert client.spin_until(lambda: child.process.poll() is not None or client.anomaly, 60), "no flag"
        deadline = time.monotonic() + 300
        while child.process.poll() is None and time.monotonic() < deadline and "active" not in dict(seen):
            seen.append((client.lifecycle_state(timeout=5.0), len(client.statuses)))
            client.spin_until(lambda: False, 0.5)
        assert child.process.poll() is None and seen[-1][0] == "active", f"{seen}\n{log.read_text()[-2000:]}"
        configuring = [statuses for state, statuses in seen if state == "configuring"]
        assert configuring, f"get_state was not answered during configure: {seen}"
        heartbeats = client.statuses[configuring[0]:configuring[-1]]
        assert heartbeats and {status["message"] for status in heartbeats} == {"not judging: unconfigured"}, seen
    finally:
        client.close()
        code = child.stop()
    assert code == 0, f"detector_node exited with {code} on SIGINT:\n{log.read_text()[-2000:]}"


@pytest.mark.parametrize("device, backend", [("cpu", "torch"), ("cpu", "onnxruntime"), pytest.param(
    "cuda", "torch", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"))])
def test_cleanup_frees_the_model(device, backend):
    """After configure, activate, deactivate and cleanup no reference to the model is left, nor CUDA memory.

    On CUDA, ``compile: auto`` has captured the model as a CUDA graph at configure: its memory goes too. What
    stays is cuBLAS's workspace for each stream that ran a matrix product (the capture's and the warm-up's),
    which PyTorch keeps for the process: a second cycle leaves nothing more, and without them nothing is left.
    """
    context = Context()
    node = in_process_node(context, device=device, backend=backend)
    try:
        cuda = device == "cuda"
        before, reserved = (torch.cuda.memory_allocated(), torch.cuda.memory_reserved()) if cuda else (0, 0)
        left = []
        for _ in range(2 if cuda else 1):
            older = {id(obj) for obj in gc.get_objects() if type(obj) is Pipeline}
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            pipelines = [weakref.ref(obj) for obj in gc.get_objects()
                         if type(obj) is Pipeline and id(obj) not in older]
            assert len(pipelines) == 1
            if cuda:
                assert torch.cuda.memory_allocated() > before
            for transition in (node.trigger_activate, node.trigger_deactivate, node.trigger_cleanup):
                assert transition() == TransitionCallbackReturn.SUCCESS, transition.__name__
            assert all(pipeline() is None for pipeline in pipelines), "the model outlived cleanup"
            if cuda:
                left.append(torch.cuda.memory_allocated())
        if cuda:
            assert left[1] == left[0], "a second configure/cleanup cycle left more CUDA memory than the first"
            torch._C._cuda_clearCublasWorkspaces()
            assert torch.cuda.memory_allocated() <= before
            torch.cuda.empty_cache()
            assert torch.cuda.memory_reserved() <= reserved, "cleanup left CUDA's cache holding the model"
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_on_a_cpu_the_default_backend_runs_an_exported_graph_and_refuses_a_missing_one(exported, tmp_path):
    """On a CPU, backend auto takes onnxruntime; onnx_path names the graph of ``daain export`` it runs."""
    context = Context()
    node = in_process_node(context, device="cpu", backend="auto", onnx_path=str(tmp_path / "absent.onnx"))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.set_parameters([Parameter("onnx_path", value=str(exported))])[0].successful
        older = {id(obj) for obj in gc.get_objects() if type(obj) is Pipeline}
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        pipeline, = [obj for obj in gc.get_objects() if type(obj) is Pipeline and id(obj) not in older]
        assert pipeline.backend.name == "onnxruntime"
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_compile_mode_the_device_cannot_run_fails_configure_and_the_node_stays_unconfigured():
    context = Context()
    node = in_process_node(context, device="cpu", compile="cuda-graph")
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.set_parameters([Parameter("compile", value="off")])[0].successful  # still unconfigured
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_bug_in_configure_leaves_no_inference_thread_and_the_node_unconfigured(monkeypatch):
    """An exception that is not a DaainError (a bug, injected here: no real input raises one) goes to on_error.

    rclpy answers ERROR and runs on_error, which leaves the node unconfigured: once the cause is gone it configures
    as usual. No inference thread outlives the failed transition (configure shuts its pool down rather than
    leaving that to the garbage collector, which a traceback kept alive would delay).
    """
    import daain_ros.ros.node as node_module
    context = Context()
    node = in_process_node(context, device="cpu")
    load_pipeline = node_module.load_pipeline

    def broken(settings, logger):
        raise RuntimeError("injected bug")
    monkeypatch.setattr(node_module, "load_pipeline", broken)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.ERROR
        for _ in range(50):  # the pool's thread ends once it has seen the shutdown
            if not any(t.name.startswith("daain_inference") for t in threading.enumerate()):
                break
            time.sleep(0.1)
        assert not [t.name for t in threading.enumerate() if t.name.startswith("daain_inference")]
        monkeypatch.setattr(node_module, "load_pipeline", load_pipeline)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_detector_never_calibrated_needs_a_threshold_to_configure(tmp_path):
    """Its threshold is inf, against which no frame would be flagged: configure fails until one is given.

    The calibrated one (a negative threshold) is then refused while that detector is loaded.
    """
    from daain_ros.detector.artifact import load_detector, save_detector
    from daain_ros.segmentation.espnet import load_espnet
    model = load_espnet(MODEL)
    detector = load_detector(DETECTOR, model)
    detector.threshold.fill_(float("inf"))
    uncalibrated = save_detector(detector, tmp_path / "uncalibrated", model)
    context = Context()
    node = in_process_node(context, device="cpu", detector_path=str(uncalibrated))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.set_parameters([Parameter("threshold", value=1.5)])[0].successful
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        refused = node.set_parameters([Parameter("threshold", value=-1.0)])[0]
        assert not refused.successful and "never calibrated" in refused.reason
        assert node.get_parameter("threshold").value == 1.5
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
