# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bench``'s backend rows: every way of running the monitor, each against ESPNet alone on its backend.

torch: ESPNet alone in eager PyTorch, the hook path the graph replaced (:mod:`daain_ros.bench.hooks`), the
one-graph monitor (the pipeline's default) and that graph's ESPNet and gathers without the detector, which
splits the graph's overhead into reading the samples and scoring them. On CUDA the monitor runs as the
pipeline runs it there, replayed as a CUDA graph, so ESPNet alone is replayed too (``espnet_cuda_graph``, its
floor) and the monitor is also timed eagerly (``graph_eager``, against eager ESPNet). On the CPU, the monitor
compiled with ``torch.compile`` (``graph_compiled``, the ``compile: torch-compile`` setting) against ESPNet
alone compiled the same way (``espnet_compiled``); each compiles at its first warm-up batch, which is not timed.
onnxruntime, on the CPU: ESPNet alone exported to ONNX and the exported monitor. All run on the same batches in
one process, in alternating order, so machine noise hits them alike; every ratio is of medians from that one
run, with a 95 % bootstrap interval over its batches (``overhead_ci95``). ``--block`` runs each variant on
several batches in a row, as a node runs one model frame after frame. The whole-frame case feeds camera-size
frames, so the resize to the network size is timed too.
"""

from daain_ros.bench.hooks import HookedStep
from daain_ros.bench.variants import (AcceleratedEspnetStep, DaainStep, EspnetStep, GatheredStep, OnnxEspnetStep,
                                      ratio_interval, summary, time_interleaved)
from daain_ros.detector.artifact import load_detector
from daain_ros.evaluation.metrics import ratio
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import load_espnet

#: (variant, its ESPNet-alone floors, the first present taken): the keys of a backend leaf's ``overhead``. ``graph``
#: is the pipeline's default, replayed as a CUDA graph on CUDA, so its floor there is ESPNet replayed the same way.
OVERHEADS = {"gathers": ("gathers", ("espnet",)), "hooks": ("hooks", ("espnet",)),
             "graph": ("graph", ("espnet_cuda_graph", "espnet")), "graph_eager": ("graph_eager", ("espnet",)),
             "graph_compiled": ("graph_compiled", ("espnet_compiled",)),
             "graph_compiled_vs_torch_espnet": ("graph_compiled", ("espnet",)),
             "onnxruntime": ("onnxruntime", ("espnet_onnxruntime",)),
             "onnxruntime_vs_torch_espnet": ("onnxruntime", ("espnet",))}


def floor_of(variant, leaf):
    """The ESPNet-alone variant that ``variant``'s overhead divides by in ``leaf`` (None: no floor timed)."""
    return next((floor for floor in OVERHEADS[variant][1] if floor in leaf), None)


def backend_steps(model_path, detector_dir, size, device, threads, onnxruntime=True, compiled=False):
    """The timed variants at ``size`` on ``device``, each on its own model instance (hooks would fire elsewhere).

    The CUDA-graph variants run on CUDA only, ONNX Runtime's (exporting them takes seconds per size) and, with
    ``compiled``, the ``torch.compile`` ones (compiling them tens of seconds per shape) on the CPU only.
    """
    hooked, gathered = load_espnet(model_path, device), load_espnet(model_path, device)
    steps = {"espnet": EspnetStep(load_espnet(model_path, device), size),
             "gathers": GatheredStep(gathered, load_detector(detector_dir, gathered).key),
             "hooks": HookedStep(hooked, load_detector(detector_dir, hooked)),
             "graph": DaainStep(Pipeline.load(model_path, detector_dir, str(device), threads=threads))}
    if device.type == "cuda":
        steps["espnet_cuda_graph"] = AcceleratedEspnetStep(load_espnet(model_path, device), size, "cuda-graph")
        steps["graph_eager"] = DaainStep(Pipeline.load(model_path, detector_dir, str(device), compile="off"))
    if compiled and device.type == "cpu":
        steps["espnet_compiled"] = AcceleratedEspnetStep(load_espnet(model_path, device), size, "torch-compile")
        steps["graph_compiled"] = DaainStep(Pipeline.load(model_path, detector_dir, "cpu", threads=threads,
                                                          compile="torch-compile"))
    if onnxruntime and device.type == "cpu":
        steps["espnet_onnxruntime"] = OnnxEspnetStep(load_espnet(model_path), size, threads)
        steps["onnxruntime"] = DaainStep(Pipeline.load(model_path, detector_dir, "cpu", backend="onnxruntime",
                                                       threads=threads))
    return steps


def time_backends(steps, frames, batch, warmup, device, block=1):
    """Every step on the same batches of ``frames``, ``block`` in a row: per variant its timing, and the overheads."""
    batches = [frames[i:i + batch] for i in range(0, len(frames), batch)]
    wall, cpu = time_interleaved(steps, batches, warmup, device, block)
    leaf = {name: summary(wall[name], batch, cpu[name]) for name in steps}
    timed = {name: (variant, floor_of(name, leaf)) for name, (variant, _) in OVERHEADS.items()
             if variant in leaf and floor_of(name, leaf)}
    leaf["overhead"] = {name: ratio(leaf[variant]["median_ms"], leaf[floor]["median_ms"])
                        for name, (variant, floor) in timed.items()}
    leaf["overhead_ci95"] = {name: ratio_interval(wall[variant], wall[floor])
                             for name, (variant, floor) in timed.items()}
    return leaf, wall, cpu
