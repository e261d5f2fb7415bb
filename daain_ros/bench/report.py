"""The ``daain bench`` result as a short table, as JSON, and as an exit status."""

import json
from pathlib import Path

from daain_ros.errors import DaainError


def _ratio(a, b):
    return float(a / b) if a is not None and b else None


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
                                 f"{_fmt(_ratio(leaf['median_ms'], espnet), 8, '.3f')}"
                                 + (f"  skipped: {leaf['skipped']}" if leaf.get("skipped") else ""))
    head = result["overhead"]["headline"]
    lines.append(f"overhead daain/espnet at {head['at']}: {_fmt(head['ratio'], 0, '.3f')}")
    node = result["node"]
    if node.get("median_ms") is not None:
        at30 = node["at_30hz"]
        lines.append(f"node {node['size']}: publish-to-flag {node['median_ms']:.1f} ms median, {node['p90_ms']:.1f} "
                     f"ms p90; every frame judged up to {node['max_rate_hz']} Hz; at 30 Hz {at30['processed']} of "
                     f"{at30['sent']} judged ({at30['dropped']} dropped), RSS {at30['rss_start_mb']:.0f} -> "
                     f"{at30['rss_end_mb']:.0f} MB")
    if "profile" in result:
        from daain_ros.bench.profile import profile_table
        lines.append(profile_table(result["profile"]))
    fit = result["fit"]
    if fit.get("seconds_per_100_frames") is not None:
        lines.append(f"fit: {fit['seconds_per_100_frames']:.1f} s per 100 frames ({fit['frames']} frames, "
                     f"{fit['epochs_run']} epochs, peak {fit['peak_mb']:.0f} MB)")
    return "\n".join(lines)


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
