# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bench --profile``: where the DAAIN pipeline spends time that ESPNet alone does not (torch profiler).

Both variants run the same frames under the profiler; per operator, the self CPU time per frame of each
and the difference, largest first. Copies (``aten::copy_``/``clone`` under ``reshape``), permutation
matrix products (``aten::mm``) and small flow operators show up here; convolutions should not differ.
"""

from torch.profiler import ProfilerActivity, profile

from daain_ros.bench.variants import DaainStep, EspnetStep, bench_frames
from daain_ros.pipeline import Pipeline
from daain_ros.segmentation.espnet import load_espnet

ROWS = 15


def _per_op(step, frames, device):
    """Operator -> (self CPU ms per frame, calls per frame) over ``frames`` (one warm-up frame first)."""
    step(frames[:1])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for frame in frames:
            step([frame])
    return {event.key: (event.self_cpu_time_total / 1e3 / len(frames), event.count / len(frames))
            for event in prof.key_averages()}


def profile_hot_path(model_path, detector_dir, size, device, footage=None, frames=10):
    """The operators whose self CPU time differs most between the DAAIN pipeline and ESPNet alone."""
    images, _ = bench_frames(frames, size, footage)
    pipeline = Pipeline.load(model_path, detector_dir, str(device))
    try:
        daain = _per_op(DaainStep(pipeline), images, device)
    finally:
        pipeline.close()
    espnet = _per_op(EspnetStep(load_espnet(model_path, device), size), images, device)
    rows = []
    for name in set(daain) | set(espnet):
        d_ms, d_calls = daain.get(name, (0.0, 0.0))
        e_ms, e_calls = espnet.get(name, (0.0, 0.0))
        rows.append({"op": name, "daain_ms": d_ms, "espnet_ms": e_ms, "extra_ms": d_ms - e_ms,
                     "daain_calls": d_calls, "espnet_calls": e_calls})
    rows.sort(key=lambda row: -abs(row["extra_ms"]))
    return {"size": f"{size[0]}x{size[1]}", "device": str(device), "frames": frames,
            "unit": "self CPU ms per frame (profiler overhead included)",
            "daain_total_ms": sum(ms for ms, _ in daain.values()),
            "espnet_total_ms": sum(ms for ms, _ in espnet.values()), "ops": rows}


def profile_table(result):
    lines = [f"profile {result['size']} {result['device']} ({result['unit']}): daain {result['daain_total_ms']:.1f}, "
             f"espnet {result['espnet_total_ms']:.1f}",
             f"  {'operator':<34} {'daain':>8} {'espnet':>8} {'extra':>8} {'calls d/e':>12}"]
    for row in result["ops"][:ROWS]:
        lines.append(f"  {row['op'][:34]:<34} {row['daain_ms']:>8.2f} {row['espnet_ms']:>8.2f} {row['extra_ms']:>8.2f} "
                     f"{row['daain_calls']:>5.0f}/{row['espnet_calls']:<5.0f}")
    return "\n".join(lines)
