# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What ``daain bag evaluate`` concludes from its per-frame records: summary.json, report.md, scores.png.

Flags count every frame, so an unreadable frame (flagged, fail closed) counts as flagged; AUROC, AUPR
and FPR95 rank the frames with a finite score only (per kind: the clean frames against that kind's).
"""

import json
import math
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from daain_ros.evaluation.metrics import detection_metrics, ratio  # noqa: E402
from daain_ros.provenance import markdown_lines as provenance_lines  # noqa: E402

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
PLOT_FILE = "scores.png"
_LISTED_ERRORS = 20


@dataclass
class FrameRecords:
    """A few numbers per frame, in bag order (the images themselves are not kept)."""

    index: list = field(default_factory=list)
    stamp_ns: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    score: list = field(default_factory=list)
    flag: list = field(default_factory=list)
    debounced: list = field(default_factory=list)
    latency_s: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def add(self, index, stamp_ns, kind, score, flag, debounced, latency_s, error=None):
        for name, value in (("index", index), ("stamp_ns", stamp_ns), ("kind", kind), ("score", score),
                            ("flag", flag), ("debounced", debounced), ("latency_s", latency_s)):
            getattr(self, name).append(value)
        if error is not None:
            self.errors.append((index, stamp_ns, error))


def longest_run(flags, stamps_ns, first_ns):
    """The longest stretch of consecutive flagged frames: length, first frame and its span in seconds."""
    frames, start, length = 0, None, 0
    for position, flag in enumerate(flags):
        length = length + 1 if flag else 0
        if length > frames:
            frames, start = length, position - length + 1
    if not frames:
        return dict(frames=0, start_s=None, end_s=None)
    end = start + frames - 1
    return dict(frames=frames, start_s=(stamps_ns[start] - first_ns) / 1e9,
                end_s=(stamps_ns[end] - first_ns) / 1e9)


def kind_metrics(kinds, scores):
    """AUROC/AUPR/FPR95 per anomaly kind (clean frames against that kind's), and ``any`` for several."""
    finite = np.isfinite(scores)
    clean = scores[finite & (kinds == "")]
    names = sorted(set(kinds[kinds != ""]))
    groups = {name: kinds == name for name in names}
    if len(names) > 1:
        groups["any"] = kinds != ""
    results = {}
    for name, members in groups.items():
        anomalous = scores[finite & members]
        counts = dict(clean=int(clean.size), anomalous=int(anomalous.size),
                      unscored=int((members & ~finite).sum()))
        if clean.size and anomalous.size:
            results[name] = dict(counts, **detection_metrics(clean, anomalous))
        else:
            results[name] = dict(counts, auroc=None, aupr=None, fpr95=None)
    return results


def _first(mask, stamps_ns, start_ns):
    hits = np.flatnonzero(mask)
    return (None, None) if hits.size == 0 else (int(hits[0]), (stamps_ns[hits[0]] - start_ns) / 1e9)


def segment_detection(segment, stamps_ns, flags, debounced):
    """How one labelled segment was caught: flagged frames and the time from its start to the first flag."""
    inside = (stamps_ns >= segment.start_ns) & (stamps_ns < segment.end_ns)
    frames = int(inside.sum())
    first_frame, first_s = _first(debounced[inside], stamps_ns[inside], segment.start_ns)
    raw_frame, raw_s = _first(flags[inside], stamps_ns[inside], segment.start_ns)
    return dict(kind=segment.kind, start=segment.start, end=segment.end, start_ns=segment.start_ns,
                end_ns=segment.end_ns, frames=frames, flagged=int(flags[inside].sum()),
                flagged_share=ratio(int(flags[inside].sum()), frames),
                debounced_flagged=int(debounced[inside].sum()), detected=first_frame is not None,
                first_flag_frames=first_frame, first_flag_s=first_s, first_raw_flag_frames=raw_frame,
                first_raw_flag_s=raw_s)


def _latency(latency_s):
    values = np.asarray(latency_s, float)
    values = values[np.isfinite(values)] * 1e3
    if values.size == 0:
        return dict(mean=None, median=None, p95=None)
    return dict(mean=float(values.mean()), median=float(np.median(values)),
                p95=float(np.percentile(values, 95)))


def summarize(records, labels, setup):
    """Every number of the evaluation as a JSON-ready dict."""
    stamps = np.asarray(records.stamp_ns, np.int64)
    scores = np.asarray(records.score, float)
    flags, debounced = np.asarray(records.flag, bool), np.asarray(records.debounced, bool)
    kinds = np.asarray([k or "" for k in records.kind], dtype=object)
    first_ns, frames = int(stamps[0]), len(stamps)
    summary = dict(setup, frames=frames, processed=frames - len(records.errors), unreadable=len(records.errors),
                   unreadable_frames=[dict(index=i, stamp_ns=s, error=e) for i, s, e in records.errors],
                   non_finite_scores=int((~np.isfinite(scores)).sum()) - len(records.errors),
                   first_stamp_ns=first_ns, duration_s=(int(stamps[-1]) - first_ns) / 1e9,
                   flagged=int(flags.sum()), flagged_share=ratio(int(flags.sum()), frames),
                   debounced_flagged=int(debounced.sum()), debounced_share=ratio(int(debounced.sum()), frames),
                   longest_flagged_run=longest_run(flags, stamps, first_ns),
                   longest_debounced_run=longest_run(debounced, stamps, first_ns),
                   latency_ms=_latency(records.latency_s),
                   frames_per_s=ratio(frames - len(records.errors), setup.get("wall_s")))
    if labels is not None:
        clean = kinds == ""
        summary["clean"] = dict(frames=int(clean.sum()), flagged=int(flags[clean].sum()),
                                flagged_share=ratio(int(flags[clean].sum()), int(clean.sum())))
        summary["metrics"] = kind_metrics(kinds, scores)
        summary["segments"] = [segment_detection(s, stamps, flags, debounced) for s in labels.segments]
    return summary


def number(value, fmt=".3f"):
    """A figure for a report table; an em dash where there is none."""
    return "—" if value is None else format(value, fmt)


def percent(value):
    """A share as a percentage for a report table; an em dash where there is none."""
    return "—" if value is None else f"{value:.1%}"


def _overview(summary):
    run, lat = summary["longest_flagged_run"], summary["latency_ms"]
    span = f"{run['frames']} frames, {run['start_s']:.2f}-{run['end_s']:.2f} s" if run["frames"] else "none"
    latency = " / ".join(number(lat[key], ".1f") for key in ("mean", "median", "p95"))
    debounce = summary["debounce"]
    return [f"Bag `{summary['bag']}`, topic `{summary['topic']}`. Detector `{summary['detector']}` on "
            f"`{summary['model']}`, {summary['device']}, batch {summary['batch_size']}, threshold "
            f"{summary['threshold']:.6g}, debounce {debounce['k']} of "
            f"{debounce['n']}; labels: `{summary['labels']}`.", "",
            "| frames | unreadable | flagged | debounced flagged | longest flagged run | "
            "latency ms (mean / median / p95) | frames/s |", "|---|---|---|---|---|---|---|",
            f"| {summary['frames']} | {summary['unreadable']} | {summary['flagged']} "
            f"({percent(summary['flagged_share'])}) | {summary['debounced_flagged']} "
            f"({percent(summary['debounced_share'])}) | {span} | {latency} | "
            f"{number(summary['frames_per_s'], '.2f')} |", "",
            "Latency is the processing time per frame: the time of its batch's forward pass (preprocessing, "
            "ESPNet with the monitor, the detector, the copy back) divided by the frames in the batch; "
            "reading, decoding and writing are not included. Unreadable frames count as flagged.", ""]


def _labelled(summary, heading):
    clean = summary["clean"]
    lines = [f"Clean frames: {clean['frames']}, flagged {clean['flagged']} "
             f"({percent(clean['flagged_share'])}).", ""]
    if not summary["segments"]:
        return lines
    lines += [f"{heading} Per kind (clean frames against that kind's frames)", "",
              "| kind | clean | anomalous | AUROC | AUPR | FPR95 |", "|---|---|---|---|---|---|"]
    for kind, m in summary["metrics"].items():
        lines.append(f"| {kind} | {m['clean']} | {m['anomalous']} | {number(m['auroc'])} | "
                     f"{number(m['aupr'])} | {number(m['fpr95'], '.2f')} |")
    lines += ["", f"{heading} Per segment", "", "| segment | frames | flagged | detected | time to first flag |",
              "|---|---|---|---|---|"]
    for s in summary["segments"]:
        first = ("—" if s["first_flag_s"] is None
                 else f"{s['first_flag_s']:.3f} s (+{s['first_flag_frames']} frames)")
        lines.append(f"| {s['kind']}:{s['start']}-{s['end']} | {s['frames']} | {s['flagged']} "
                     f"({percent(s['flagged_share'])}) | {'yes' if s['detected'] else 'no'} | {first} |")
    return lines + ["", "Time to first flag: from the segment's first stamp to the first frame in it with the "
                        "debounced flag raised (what a planner would see).", ""]


def _unreadable(summary, heading):
    errors = summary["unreadable_frames"]
    if not errors:
        return []
    lines = [f"{heading} Unreadable frames (flagged, fail closed)", ""]
    lines += [f"- frame {e['index']} (stamp {e['stamp_ns']}): {e['error']}" for e in errors[:_LISTED_ERRORS]]
    if len(errors) > _LISTED_ERRORS:
        lines.append(f"- ... and {len(errors) - _LISTED_ERRORS} more (all in {SUMMARY_FILE})")
    return lines + [""]


def markdown(summary):
    """report.md: the title, where and how the evaluation ran (its provenance) and :func:`section`."""
    return "\n".join([f"# daain bag evaluate: {summary['bag']} {summary['topic']}", "",
                      *provenance_lines(summary.get("provenance")), "", section(summary)])


def section(summary, level=2, figures=""):
    """The evaluation as markdown, from its ``summary.json``; ``report.md`` and ``daain report`` both use it.

    :param level: heading level of its sub-sections.
    :param figures: path prefix of the plot (relative to the markdown file); None leaves it out.
    """
    heading = "#" * level
    lines = (_overview(summary) + (_labelled(summary, heading) if "metrics" in summary else [])
             + _unreadable(summary, heading))
    if figures is not None:
        lines.append(f"![score against time]({figures}{PLOT_FILE})")
    return "\n".join(lines + [""])


def plot(path, records, labels, threshold):
    """Score against time, the threshold, flagged and unreadable frames and the labelled segments shaded."""
    stamps = np.asarray(records.stamp_ns, np.int64)
    first_ns = int(stamps[0])
    times = (stamps - first_ns) / 1e9
    scores, flags = np.asarray(records.score, float), np.asarray(records.flag, bool)
    fig, ax = plt.subplots(figsize=(11, 4))
    colours = {}
    for segment in labels.segments if labels is not None else ():
        new_kind = segment.kind not in colours
        colour = colours.setdefault(segment.kind, f"C{len(colours) + 2}")
        ax.axvspan((segment.start_ns - first_ns) / 1e9, (segment.end_ns - first_ns) / 1e9, color=colour,
                   alpha=0.2, label=segment.kind if new_kind else None)
    finite = np.isfinite(scores)
    ax.plot(times[finite], scores[finite], ".-", color="C0", lw=0.8, ms=3, label="score")
    ax.plot(times[finite & flags], scores[finite & flags], "x", color="C3", ms=5, label="flagged")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.4g}")
    for position, (_, stamp, _) in enumerate(records.errors):
        ax.axvline((stamp - first_ns) / 1e9, color="C3", lw=1, ls=":",
                   label="unreadable (flagged)" if position == 0 else None)
    ax.set_xlabel("time since the first frame (s)")
    ax.set_yscale("symlog", linthresh=max(abs(threshold), 1e-3))  # the threshold and far outliers alike
    if finite.any():
        ax.set_ylim(bottom=min(0.0, float(scores[finite].min()), threshold))
    ax.set_ylabel("anomaly score (linear to the threshold, log above)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0))  # beside the plot, never over it
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def json_safe(value):
    """The value with non-finite floats as None, so JSON readers other than Python's accept it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write(out_dir, records, labels, setup):
    """Writes summary.json, report.md and scores.png into ``out_dir``; returns the summary."""
    summary = json_safe(dict(summarize(records, labels, setup), out=str(out_dir)))
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / REPORT_FILE).write_text(markdown(summary))
    plot(out_dir / PLOT_FILE, records, labels, setup["threshold"])
    return summary
