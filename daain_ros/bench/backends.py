# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bench``'s backend rows: every way of running the monitor, each against ESPNet alone on its backend.

torch: ESPNet alone in eager PyTorch, the hook path the graph replaced (:mod:`daain_ros.bench.hooks`), the
one-graph monitor (the pipeline's default) and that graph's ESPNet and gathers without the detector, which
splits the graph's overhead into reading the samples and scoring them. onnxruntime, on the CPU: ESPNet alone
exported to ONNX and the exported monitor. All run on the same batches in one process, in alternating order,
so machine noise hits them alike; every ratio is of medians from that one run. The whole-frame case feeds
camera-size frames, so the resize to the network size is timed too.
"""

from daain_ros.bench.hooks import HookedStep
from daain_ros.bench.variants import DaainStep, EspnetStep, GatheredStep, OnnxEspnetStep, summary, time_interleaved
from daain_ros.detector.artifact import load_detector
from daain_ros.evaluation.metrics import ratio
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import load_espnet

#: (variant, the ESPNet-alone floor it is divided by): the keys of a backend leaf's ``overhead``.
OVERHEADS = {"gathers": ("gathers", "espnet"), "hooks": ("hooks", "espnet"), "graph": ("graph", "espnet"),
             "onnxruntime": ("onnxruntime", "espnet_onnxruntime"),
             "onnxruntime_vs_torch_espnet": ("onnxruntime", "espnet")}


def backend_steps(model_path, detector_dir, size, device, threads, onnxruntime=True):
    """The timed variants at ``size`` on ``device``, each on its own model instance (hooks would fire elsewhere).

    ONNX Runtime's run on the CPU only; exporting them takes seconds per size.
    """
    hooked, gathered = load_espnet(model_path, device), load_espnet(model_path, device)
    steps = {"espnet": EspnetStep(load_espnet(model_path, device), size),
             "gathers": GatheredStep(gathered, load_detector(detector_dir, gathered).key),
             "hooks": HookedStep(hooked, load_detector(detector_dir, hooked)),
             "graph": DaainStep(Pipeline.load(model_path, detector_dir, str(device), threads=threads))}
    if onnxruntime and device.type == "cpu":
        steps["espnet_onnxruntime"] = OnnxEspnetStep(load_espnet(model_path), size, threads)
        steps["onnxruntime"] = DaainStep(Pipeline.load(model_path, detector_dir, "cpu", backend="onnxruntime",
                                                       threads=threads))
    return steps


def time_backends(steps, frames, batch, warmup, device):
    """Every step on the same batches of ``frames``: per variant its timing summary, and the overheads."""
    batches = [frames[i:i + batch] for i in range(0, len(frames), batch)]
    wall, cpu = time_interleaved(steps, batches, warmup, device)
    leaf = {name: summary(wall[name], batch, cpu[name]) for name in steps}
    leaf["overhead"] = {name: ratio(leaf[variant]["median_ms"], leaf[floor]["median_ms"])
                        for name, (variant, floor) in OVERHEADS.items() if variant in leaf and floor in leaf}
    return leaf, wall, cpu
