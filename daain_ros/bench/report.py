# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The ``daain bench`` result as a short table, as JSON, and as an exit status."""

import json
from pathlib import Path

from daain_ros.errors import DaainError
from daain_ros.evaluation.metrics import ratio
from daain_ros.provenance import describe_cpu

#: A backend leaf's ratios of a whole monitor over eager-PyTorch ESPNet alone, and how the tables name that monitor.
VERSUS_EAGER_ESPNET = {"onnxruntime_vs_torch_espnet": "onnxruntime monitor",
                       "graph_compiled_vs_torch_espnet": "torch.compile monitor"}


def table(result):
    """A short plain-text summary of the benchmark JSON."""
    lines = [f"{'variant':<10} {'size':<9} {'batch':>5} {'device':<6} {'median ms':>10} {'p90 ms':>9} "
             f"{'peak MB':>9} {'x espnet':>8}"]
    for variant in ("espnet", "daain", "reference"):
        for size, batches in result[variant].items():
            if size == "overhead":
                continue
            for batch, devices in batches.items():
                for device, leaf in devices.items():
                    espnet = result["espnet"][size][batch][device]["median_ms"]
                    lines.append(f"{variant:<10} {size:<9} {batch[5:]:>5} {device:<6} {_fmt(leaf['median_ms'], 10)} "
                                 f"{_fmt(leaf['p90_ms'], 9)} {_fmt(leaf['peak_mb'], 9)} "
                                 f"{_fmt(ratio(leaf['median_ms'], espnet), 8, '.3f')}"
                                 + (f"  skipped: {leaf['skipped']}" if leaf.get("skipped") else ""))
    head = result["overhead"]["headline"]
    lines.append(f"overhead daain/espnet at {head['at']}: {_fmt(head['ratio'], 0, '.3f')}")
    for where, _, _, leaf in _backend_cases(result):
        rows = [f"{variant} {ms:.1f} ms" + ("" if floor is None else f" ({floor:.3f} {_interval(interval)})")
                for variant, ms, _, floor, interval in _backend_rows(leaf)]
        lines.append(f"{where}: {', '.join(rows)}")
    node = result["node"]
    if node.get("median_ms") is not None:
        at30 = node["at_30hz"]
        lines.append(f"node {node['size']}: publish-to-flag {node['median_ms']:.1f} ms median, {node['p90_ms']:.1f} "
                     f"ms p90; every frame judged up to {node['max_rate_hz']} Hz; at 30 Hz {at30['processed']} of "
                     f"{at30['sent']} judged ({at30['dropped']} dropped), RSS {at30['rss_start_mb']:.0f} -> "
                     f"{at30['rss_end_mb']:.0f} MB{_alone(node, '; ESPNet alone with its settings {:.1f} frames/s')}")
    if "profile" in result:
        from daain_ros.bench.profile import profile_table
        lines.append(profile_table(result["profile"]))
    fit = result["fit"]
    if fit.get("seconds_per_100_frames") is not None:
        lines.append(f"fit: {fit['seconds_per_100_frames']:.1f} s per 100 frames ({fit['frames']} frames, "
                     f"{fit['epochs_run']} epochs, peak {fit['peak_mb']:.0f} MB)")
    return "\n".join(lines)


def markdown(result, level=2):
    """The benchmark as markdown, from its JSON.

    Settings, one row per case, the memory each detector adds, the node and the fit (``daain report`` renders bench
    JSON with it).

    :param level: heading level of its sub-sections.
    """
    sub = "#" * level
    settings = result.get("settings", {})
    lines = [f"Settings: {settings.get('threads', '?')} thread(s); {settings.get('iterations', '?')} timed batches "
             f"after {settings.get('warmup', '?')} warm-up per case{' (quick run)' if settings.get('quick') else ''}; "
             f"model `{settings.get('model', '?')}`; frames: {settings.get('frames', '?')}.", ""]
    lines += [f"- detector at {size}: {text}" for size, text in settings.get("detectors", {}).items()]
    lines += ["", "| variant | size | batch | device | median ms | p90 ms | peak MB | x ESPNet |",
              "|---|---|---|---|---|---|---|---|"]
    for variant, size, batch, device, leaf in _leaves(result):
        espnet = result["espnet"][size][batch][device]["median_ms"]
        note = f" skipped: {leaf['skipped']}" if leaf.get("skipped") else ""
        lines.append(f"| {variant} | {size} | {batch[5:]} | {device} | {_md(leaf.get('median_ms'))} | "
                     f"{_md(leaf.get('p90_ms'))} | {_md(leaf.get('peak_mb'), '.0f')} | "
                     f"{_md(ratio(leaf.get('median_ms'), espnet), '.3f')}{note} |")
    head = result["overhead"]["headline"]
    lines += ["", f"**Overhead DAAIN / ESPNet at {head['at']}: {_md(head['ratio'], '.3f')}** (median time over "
                  f"median time, the two interleaved {_interleaving(result)} in one process).", ""]
    lines += _backends_markdown(result, sub) + _memory_markdown(result, sub)
    lines += _node_markdown(result.get("node", {}), sub)
    fit = result.get("fit", {})
    lines += [f"{sub} Fit", ""]
    if fit.get("seconds_per_100_frames") is not None:
        lines.append(f"{fit['seconds_per_100_frames']:.1f} s per 100 frames ({fit['frames']} frames, "
                     f"{fit['epochs_run']} epochs, peak {_md(fit.get('peak_mb'), '.0f')} MB)."
                     + (f" {fit['note']}." if fit.get("note") else ""))
    else:
        lines.append(_not_measured(fit))
    return "\n".join(lines) + "\n"


def overview(runs):
    """One markdown table row per timed case of each bench run: the figures that issue 17's goals are about.

    :param runs: (source name, provenance, result) of each run, in the order to list them; the provenance is the
        run's own (date, commit, machine), as :func:`daain_ros.results.result_provenance` reads it, or None.
    """
    lines = ["| source | date | commit | machine | interleaving | case | graph / ESPNet alone [95 %] | ONNX Runtime "
             "monitor / eager torch ESPNet alone [95 %] | torch.compile monitor / eager torch ESPNet alone [95 %] | "
             "node: every frame judged up to (ESPNet alone with its settings) | node at 30 Hz: judged |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, origin, result in runs:
        origin = origin or {}
        machine, node = origin.get("machine") or {}, result.get("node", {})
        at30 = node.get("at_30hz") or {}
        cases = [(where, device, leaf) for where, device, whole, leaf in _backend_cases(result) if not whole]
        for i, (where, device, leaf) in enumerate(cases or [("no backend comparison", None, {})]):
            first = i == 0 and node.get("max_rate_hz") is not None
            rate = f"{node['max_rate_hz']} Hz at {node['size']}{_alone(node, ' ({:.1f}/s)')}" if first else "-"
            judged = f"{at30['processed']} of {at30['sent']}" if i == 0 and at30.get("sent") else "-"
            on_gpu = device == "cuda" and machine.get("cuda_device")
            lines.append(f"| `{name}` | {(origin.get('date') or '?')[:10]} | {origin.get('commit') or '?'} | "
                         f"{on_gpu or describe_cpu(machine)} | {_interleaving(result)} | {where} | "
                         f"{_ratio(leaf, 'graph')} | {_ratio(leaf, 'onnxruntime_vs_torch_espnet')} | "
                         f"{_ratio(leaf, 'graph_compiled_vs_torch_espnet')} | {rate} | "
                         f"{judged} |")
    return "\n".join(lines) + "\n"


def _ratio(leaf, key):
    """A backend leaf's ratio ``key`` with its 95 % interval, or a dash where the run did not measure it."""
    value = leaf.get("overhead", {}).get(key)
    return "-" if value is None else f"{value:.3f} {_interval(leaf.get('overhead_ci95', {}).get(key))}"


def _leaves(result, variants=("espnet", "daain", "reference")):
    """(variant, size, batch, device, leaf) of every timed case."""
    for variant in variants:
        for size, batches in result[variant].items():
            if size == "overhead":
                continue
            for batch, devices in batches.items():
                for device, leaf in devices.items():
                    yield variant, size, batch, device, leaf


def _backend_cases(result):
    """(where, device, whether it is the whole-frame case, backend leaf) of every timed case and the whole-frame case.

    Older results have neither.
    """
    for size, batches in result.get("backends", {}).items():
        for batch, devices in batches.items():
            for device, leaf in devices.items():
                yield f"{size} {batch} {device}", device, False, leaf
    for device, leaf in result.get("frame", {}).items():
        yield f"whole {leaf['camera']} frame to {leaf['size']} batch1 {device}", device, True, leaf


def _backend_rows(leaf):
    """(variant, median ms, p90 ms, median over its backend's ESPNet alone, its 95 % interval) of a backend leaf.

    Results of before the interval was measured have none.
    """
    intervals = leaf.get("overhead_ci95", {})
    for variant in ("espnet", "gathers", "hooks", "graph_eager", "espnet_cuda_graph", "graph", "espnet_compiled",
                    "graph_compiled", "espnet_onnxruntime", "onnxruntime"):
        if variant in leaf:
            yield (variant, leaf[variant]["median_ms"], leaf[variant]["p90_ms"], leaf["overhead"].get(variant),
                   intervals.get(variant))


def _interval(interval):
    """A 95 % interval as ``[low, high]``, or ``-`` where none was measured."""
    return "-" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _interleaving(result):
    """How the variants took turns: batch by batch, or ``--block`` batches each (older results: batch by batch)."""
    block = result.get("settings", {}).get("block", 1)
    return "batch by batch" if block == 1 else f"{block} batches at a time"


def _backends_markdown(result, sub):
    """Each backend's variants against ESPNet alone on the same backend, timed together."""
    cases = list(_backend_cases(result))
    if not cases:
        return []
    lines = [f"{sub} Backends", "", "Each variant against ESPNet alone on the same backend, all interleaved "
             f"{_interleaving(result)} in one process: torch (eager ESPNet; gathers: the one-graph monitor's ESPNet "
             "and gathers without the detector; the hook path; the one-graph monitor, on CUDA replayed as a CUDA "
             "graph against ESPNet alone replayed the same way, espnet_cuda_graph, and eagerly as graph_eager; on "
             "the CPU both compiled with torch.compile, espnet_compiled and graph_compiled) and "
             "onnxruntime (ESPNet alone and the monitor, each exported to ONNX). The interval is a 95 % bootstrap "
             "interval of the ratio over the run's batches (the pairs resampled together).", "",
             "| case | variant | median ms | p90 ms | x ESPNet alone, same backend | 95 % interval |",
             "|---|---|---|---|---|---|"]
    for where, _, _, leaf in cases:
        intervals = leaf.get("overhead_ci95", {})
        lines += [f"| {where} | {variant} | {_md(ms)} | {_md(p90)} | {_md(floor, '.3f')} | "
                  f"{_interval(interval)} |" for variant, ms, p90, floor, interval in _backend_rows(leaf)]
        for key, monitor in VERSUS_EAGER_ESPNET.items():
            versus = leaf["overhead"].get(key)
            if versus is not None:
                lines.append(f"| {where} | {monitor} / eager torch ESPNet alone | | | {versus:.3f} | "
                             f"{_interval(intervals.get(key))} |")
    return lines + [""]


def _memory_markdown(result, sub):
    """Peak memory each detector adds to ESPNet's, where the reference's gather was measured."""
    rows = []
    for _, size, batch, device, leaf in _leaves(result, ("reference",)):
        if leaf.get("extra_peak_vs_daain") is None:
            continue
        espnet = result["espnet"][size][batch][device]["peak_mb"]
        daain = result["daain"][size][batch][device]["peak_mb"]
        rows.append(f"| {size} | {batch[5:]} | {device} | {leaf['peak_mb'] - espnet:.0f} | {daain - espnet:.0f} | "
                    f"{leaf['extra_peak_vs_daain']:.0f}x | {_md(leaf.get('frame_extra_vs_daain'), '.0f')}x |")
    if not rows:
        return [f"{sub} Memory", "", "The reference's gather was not measured (skipped in every case).", ""]
    return [f"{sub} Memory each detector adds to ESPNet's peak", "",
            "| size | batch | device | reference MB | DAAIN MB | reference / DAAIN | over the frames alone |",
            "|---|---|---|---|---|---|---|", *rows, ""]


def _node_markdown(node, sub):
    lines = [f"{sub} Node", ""]
    if node.get("median_ms") is None:
        return lines + [_not_measured(node), ""]
    at30 = node["at_30hz"]
    lines.append(f"{_node_setting(node)} at {node['size']}: publish-to-flag latency {node['median_ms']:.1f} ms "
                 f"median, {node['p90_ms']:.1f} ms p90 ({_md(node.get('node_internal_median_ms'))} ms inside the "
                 f"node); every frame judged up "
                 f"to {node['max_rate_hz']} Hz. At 30 Hz: {at30['processed']} of {at30['sent']} frames judged "
                 f"({at30['dropped']} dropped), latency {_md(at30.get('latency_first_half_ms'))} ms in the first "
                 f"half and {_md(at30.get('latency_second_half_ms'))} ms in the second, RSS "
                 f"{_md(at30.get('rss_start_mb'), '.0f')} -> {_md(at30.get('rss_end_mb'), '.0f')} MB.")
    alone = node.get("espnet_alone")
    if alone:
        share = node["max_rate_hz"] / alone["frames_per_s"] if node.get("max_rate_hz") else None
        lines.append(f"ESPNet alone on the node's backend ({alone['backend']}), workers ({alone['workers']}) and "
                     f"threads, in the benchmark's process with no monitor and no ROS: {alone['frames_per_s']:.1f} "
                     f"frames/s, about the most a node so set could judge on this machine in this run; the node's "
                     f"top rate is {_md(share, '.2f')} of it (the sweep's next rate dropped frames).")
    return lines + [""] + _contention_markdown(node.get("contention"))


def _alone(node, template):
    """``template`` filled with ESPNet alone's frames per second with the node's settings, or "" if not measured.

    Runs before 2026-12-07 did not measure it.
    """
    alone = node.get("espnet_alone")
    return template.format(alone["frames_per_s"]) if alone else ""


def _node_setting(node):
    """What the node ran with (older results: the bench's thread count on torch, one worker, not recorded)."""
    workers = {None: "", 0: "its default workers, "}.get(node.get("workers"), f"{node.get('workers')} workers, ")
    threads = {0: "one thread per core", 1: "1 thread"}.get(node.get("threads"), f"{node.get('threads')} threads")
    backend = node.get("backend", "torch") + (f" = {node['runs_on']}" if "runs_on" in node else "")
    cores = f" on {node['cpus']} cores" if "cpus" in node else ""
    return f"The node (backend {backend}, {workers}{threads}{cores})"


def _contention_markdown(contention):
    """Each setting's top rate alone and beside a competing busy loop (older results: none, or one worker)."""
    if not contention:
        return []
    if contention.get("skipped"):
        return [f"Contention: not measured ({contention['skipped']}).", ""]
    lines = [f"Beside {contention['competing_processes']} competing CPU-bound process on the same cores "
             f"(CPUs {contention['cpus']}, OMP_WAIT_POLICY {contention['omp_wait_policy']}), every frame judged up to:",
             "", "| backend | workers | threads each | alone Hz | contended Hz | contended / alone | median ms alone "
             "| median ms contended |", "|---|---|---|---|---|---|---|---|"]
    for row in contention["settings"]:
        compiled = f" ({row['compile']})" if row.get("compile", "auto") != "auto" else ""
        setting = f"| {row['backend']}{compiled} | {row.get('workers', 1)} | {row['threads']} |"
        if row.get("error"):
            lines.append(f"{setting} {row['error']} | | | | |")
            continue
        idle, busy = row["idle"], row["contended"]
        lines.append(f"{setting} {_md(idle['max_rate_hz'], '.0f')} | "
                     f"{_md(busy['max_rate_hz'], '.0f')} | {_md(row['ratio'], '.2f')} | {_md(idle['median_ms'])} | "
                     f"{_md(busy['median_ms'])} |")
    return lines + [""]


def _not_measured(section):
    return f"Not measured: {section.get('skipped') or section.get('error') or 'no result'}."


def _md(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def _fmt(value, width, spec=".1f"):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def write_json(result, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, allow_nan=False, default=_jsonable))
    return path


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def raise_if_error(result):
    """The first worker error of the espnet or daain sections (a benchmark that failed is not a result)."""
    for variant in ("espnet", "daain"):
        for size, batches in result[variant].items():
            if size == "overhead":
                continue
            for batch, devices in batches.items():
                for device, leaf in devices.items():
                    if "memory_error" in leaf:
                        raise DaainError(f"{variant} {size} {batch} {device}: {leaf['memory_error']}")
    for section in ("fit", "node"):
        if "error" in result[section]:
            raise DaainError(f"{section}: {result[section]['error']}")
    return result
