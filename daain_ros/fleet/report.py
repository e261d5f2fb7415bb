# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The fleet report: fleet.json, fleet.csv, fleet.md and fleet.png; :func:`section` also renders for ``daain report``.

Loads without Ray (numpy, matplotlib), so a fleet run's JSON renders on any machine.
"""

import csv
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from daain_ros.evaluation.bag_report import json_safe, number, percent  # noqa: E402
from daain_ros.fleet.summary import ROW_KEYS  # noqa: E402
from daain_ros.provenance import markdown_lines as provenance_lines  # noqa: E402

JSON_FILE, CSV_FILE, MARKDOWN_FILE, PLOT_FILE = "fleet.json", "fleet.csv", "fleet.md", "fleet.png"
#: Bags listed one per line in the markdown; a larger fleet lists its failures only (all bags: fleet.csv).
LISTED_BAGS = 100
_COLOURS = {"pass": "C2", "fail": "C3", "error": "C7"}


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _overview(doc):
    counts, clean, labelled = doc["overall"]["counts"], doc["overall"]["clean"], doc["overall"]["labelled"]
    throughput, workers = doc["overall"]["throughput"], doc["workers"]
    status, verdict = counts["status"], counts["verdict"]
    settings = doc["settings"]
    return [f"Detector `{settings['detector']}` on `{settings['model']}`, threshold "
            f"{'calibrated' if settings['threshold'] is None else format(settings['threshold'], '.6g')}, debounce "
            f"{settings['debounce']['k']} of {settings['debounce']['n']}, batch {settings['batch_size']}; "
            f"criteria: {_criteria_line(doc.get('criteria'))}.", "",
            "| bags | passed | failed | errors | evaluated now | skipped (resumed) | clean flag rate | "
            "segments detected | frames/s | workers |", "|---|---|---|---|---|---|---|---|---|---|",
            f"| {counts['bags']} | {verdict['pass']} | {verdict['fail']} | {verdict['error']} | {status['evaluated']} "
            f"| {status['skipped']} | {percent(clean['flag_rate'])} of {clean['frames']} frames in "
            f"{_count(clean['bags'], 'bag')} | {labelled['segments_detected']} of {labelled['segments']} | "
            f"{number(throughput['frames_per_s'], '.2f')} | {_workers_line(workers)} |", "",
            f"Throughput: {throughput['frames']} frames evaluated in this run in "
            f"{number(throughput['wall_s'], '.1f')} s (Ray start-up, model loading and every bag's reading, "
            "inference and writing included). Unreadable frames count as flagged.", ""]


def _criteria_line(criteria):
    if not criteria:
        return "none (a bag passes when it could be evaluated)"
    default = {k: v for k, v in criteria["default"].items() if v is not None}
    limits = ", ".join(f"{k} {v:g}" for k, v in default.items()) or "no limits"
    patterns = len(criteria["bags"])
    return f"`{criteria['path']}` ({limits}{f'; {patterns} bag patterns' if patterns else ''})"


def _workers_line(workers):
    gpus = f", {workers['gpus_per_worker']:g} GPU" if workers["gpus_per_worker"] else ""
    return f"{workers['count']} x {workers['threads_per_worker']} thread{gpus} ({workers['address']})"


def _metrics(doc, heading):
    metrics = doc["overall"]["labelled"]["metrics"]
    if not metrics:
        return []
    lines = [f"{heading} Labelled bags, frames pooled (clean frames against each kind's)", "",
             "| kind | clean | anomalous | AUROC | AUPR | FPR95 |", "|---|---|---|---|---|---|"]
    for kind, m in metrics.items():
        lines.append(f"| {kind} | {m['clean']} | {m['anomalous']} | {number(m['auroc'])} | {number(m['aupr'])} | "
                     f"{number(m['fpr95'], '.2f')} |")
    return lines + [""]


def _bag_line(row):
    run = "—" if row["longest_run_s"] is None else f"{row['longest_run_frames']} ({row['longest_run_s']:.2f} s)"
    segments = "—" if not row["segments"] else f"{row['segments_detected']}/{row['segments']}"
    why = "; ".join(row["reasons"]).replace("|", "/")
    return (f"| {row['name']} | {row['status']} | {row['kind'] or '—'} | {number(row['frames'], 'd')} | "
            f"{percent(row['flag_rate'])} | {run} | {segments} | **{row['verdict']}** | {why} |")


def _bags(doc, heading):
    rows = doc["bags"]
    listed = rows if len(rows) <= LISTED_BAGS else [row for row in rows if row["verdict"] != "pass"][:LISTED_BAGS]
    title = "Bags" if listed is rows else f"Bags that did not pass (first {len(listed)}; every bag: {CSV_FILE})"
    lines = [f"{heading} {title}", "", "| bag | status | kind | frames | flagged | longest flag held | segments "
             "detected | verdict | why |", "|---|---|---|---|---|---|---|---|---|"]
    return lines + [_bag_line(row) for row in listed] + [""]


def markdown(doc):
    """fleet.md: the title, the run's provenance and :func:`section`."""
    return "\n".join([f"# daain fleet evaluate: {doc['overall']['counts']['bags']} bags", "",
                      *provenance_lines(doc.get("provenance")), "", section(doc)])


def section(doc, level=2, figures=""):
    """The fleet run as markdown, from its ``fleet.json``; ``fleet.md`` and ``daain report`` both use it.

    :param level: heading level of its sub-sections.
    :param figures: path prefix of the plot (relative to the markdown file); None leaves it out.
    """
    heading = "#" * level
    lines = _overview(doc) + _metrics(doc, heading) + _bags(doc, heading)
    if figures is not None:
        lines.append(f"![flag rate per clean bag, time to detect per segment]({figures}{PLOT_FILE})")
    return "\n".join(lines + [""])


_NAMED_BAGS = 30  # up to this many bars carry their bag's name


def _flag_rates(ax, rows, criteria):
    clean = sorted((row for row in rows if row["kind"] == "clean"), key=lambda row: -row["flag_rate"])
    rates = [100 * row["flag_rate"] for row in clean]
    ax.bar(np.arange(len(clean)), rates, color=[_COLOURS[row["verdict"]] for row in clean],
           width=1.0 if len(clean) > _NAMED_BAGS else 0.8)
    limit = (criteria or {}).get("default", {}).get("max_flagged_percent")
    if limit is not None:
        ax.axhline(limit, color="k", ls="--", lw=1, label=f"limit {limit:g} %")
        ax.legend(fontsize=8)
    ax.set_ylim(0, max([1.0, *(1.15 * r for r in rates), 1.3 * (limit or 0)]))
    if len(clean) <= _NAMED_BAGS:
        ax.set_xticks(np.arange(len(clean)), [row["name"] for row in clean], rotation=30, ha="right", fontsize=7)
    ax.set_xlabel(f"clean bags, by flag rate ({len(clean)}; green pass, red fail)")
    ax.set_ylabel("frames flagged (%)")


def _detections(ax, segments, criteria):
    delays = sorted(s["first_flag_s"] for s in segments if s["detected"])
    missed = sum(1 for s in segments if not s["detected"])
    limit = (criteria or {}).get("default", {}).get("detect_within_s")
    top = max([0.5, *(1.2 * d for d in delays), 1.3 * (limit or 0)])
    ax.plot(np.arange(len(delays)), delays, "o", color="C0", ms=4, label="detected")
    if missed:
        ax.plot(np.arange(len(delays), len(delays) + missed), [0.95 * top] * missed, "x", color="C3",
                label="missed (never flagged)")
    if limit is not None:
        ax.axhline(limit, color="k", ls="--", lw=1, label=f"limit {limit:g} s")
    ax.set_ylim(-0.03 * top, top)  # a detection at 0 s stays visible
    ax.set_xlim(-0.5, max(len(segments), 1) - 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel(f"labelled segments, by time to detect ({len(segments)})")
    ax.set_ylabel("time to first debounced flag (s)")
    if segments:
        ax.legend(fontsize=8)


def plot(path, doc, segments):
    """Flag rate of each clean bag (coloured by verdict) and the time to detect each labelled segment."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    _flag_rates(left, doc["bags"], doc.get("criteria"))
    _detections(right, segments, doc.get("criteria"))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_csv(path, rows):
    """fleet.csv: a row per bag, the reasons joined by ``; ``."""
    with open(path, "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(ROW_KEYS)
        for row in rows:
            writer.writerow(["; ".join(row[key]) if key == "reasons" else ("" if row[key] is None else row[key])
                             for key in ROW_KEYS])


def write(out_dir, doc, segments):
    """Writes fleet.json, fleet.csv, fleet.md and fleet.png into ``out_dir``; returns the JSON-safe document.

    :param segments: every labelled segment of the evaluated bags (their ``summary.json`` entries), for the plot.
    """
    doc = json_safe(doc)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / JSON_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    write_csv(out_dir / CSV_FILE, doc["bags"])
    (out_dir / MARKDOWN_FILE).write_text(markdown(doc))
    plot(out_dir / PLOT_FILE, doc, segments)
    return doc
