# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Writes an evaluation: ``results.json`` (every number), ``report.md`` (the table) and PNG plots."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from daain_ros.evaluation.metrics import flag_rate, judged_scores  # noqa: E402
from daain_ros.evaluation.protocol import METHODS  # noqa: E402
from daain_ros.provenance import markdown_lines as provenance_lines  # noqa: E402
from daain_ros.provenance import provenance as record_provenance  # noqa: E402

FIGURES = {"roc": "roc.png", "histograms": "histograms.png", "domain": "domain.png"}


def _setting(row):
    if "eps" in row:
        return f"eps {round(row['eps'] * 255)}/255"
    return f"severity {row['severity']}"


def _table(rows):
    """Markdown: one line per kind and setting; AUROC / AUPR / FPR95 per method; attack effect."""
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    head = "| anomaly | setting | " + " | ".join(methods) + " | DAAIN flagged | pixel agreement |"
    lines = [head, "|" + "---|" * (len(methods) + 4)]
    keys = list(dict.fromkeys((r["kind"], _setting(r)) for r in rows))
    for kind, setting in keys:
        group = {r["method"]: r for r in rows if r["kind"] == kind and _setting(r) == setting}
        cells = [f"{group[m]['auroc']:.3f} / {group[m]['aupr']:.3f} / {group[m]['fpr95']:.2f}" for m in methods]
        daain = group["daain"]
        effect = f"{daain['pixel_agreement']:.3f}" if "pixel_agreement" in daain else ""
        lines.append(f"| {kind} | {setting} | " + " | ".join(cells) + f" | {daain['flag_rate']:.0%} | {effect} |")
    return "\n".join(lines)


ADAPTIVE_TEXT = (
    "PGD on the segmentation (bounded damage) plus a hinge on what the attacker knows of the detector, its weight "
    "searched per image over random restarts (`daain_ros.evaluation.adaptive`). `white-box` knows the real "
    "detector, key and threshold; `surrogate` fitted the same recipe with its own key; `surrogate-eot` attacks "
    "several such detectors at once; `key-agnostic` has no detector and keeps every leaf layer's activations as "
    "typical as on clean fit frames, position by position. A success is a frame that, rounded to uint8, is "
    "damaged (pixel agreement with the clean prediction <= 0.5) and not flagged by the real detector at its "
    "calibrated threshold, by this budget's run or a smaller budget's (its images are within this budget too; "
    "'this run' counts the budget's own run alone); the other columns are the real detector's on this run.")


def _adaptive_table(rows):
    """Markdown: one line per attacker and budget."""
    lines = ["| attacker | eps | frames | success | this run | flagged | pixel agreement | steps x restarts "
             "| steps used | s / image |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['attacker']} | {round(r['eps'] * 255)}/255 | {r['frames']} | {r['success_rate']:.0%} | "
              f"{r['success_rate_at_budget']:.0%} | "
              f"{r['flag_rate']:.0%} | {r['pixel_agreement']:.3f} | {r['steps']} x {r['restarts']} | "
              f"{r['steps_per_image']:.0f} | {r['seconds_per_image']:.1f} |" for r in rows]
    return "\n".join(lines)


def _plot_grid(raw, path, draw, title):
    names = [n for n in raw if n != "clean"]
    cols = 4
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        draw(ax, raw["clean"], raw[name])
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _roc(ax, clean, anomalous):
    for method in anomalous:
        labels = np.r_[np.zeros(len(clean[method])), np.ones(len(anomalous[method]))]
        fpr, tpr, _ = roc_curve(labels, judged_scores(method, np.r_[clean[method], anomalous[method]]))
        ax.plot(fpr, tpr, label=method, lw=2 if method == "daain" else 1)
    ax.plot([0, 1], [0, 1], "k:", lw=0.5)
    ax.legend(fontsize=6)


def _drawn(groups, threshold):
    """The groups of scores as drawn: each one that is not finite (flagged) at the largest finite value shown."""
    groups = [judged_scores("drawn", group) for group in groups]
    shown = np.concatenate(groups)
    top = shown[shown < np.finfo(np.float64).max].max(initial=threshold)
    return [np.minimum(group, top) for group in groups]


def _histogram(ax, clean, anomalous, threshold):
    clean, anomalous = _drawn([clean["daain"], anomalous["daain"]], threshold)
    bins = np.histogram_bin_edges(np.r_[clean, anomalous], bins=30)
    ax.hist(clean, bins=bins, alpha=0.6, label="clean")
    ax.hist(anomalous, bins=bins, alpha=0.6, label="anomalous")
    ax.axvline(threshold, color="k", ls="--", lw=1)
    ax.legend(fontsize=6)


def _domain_plot(clean, domain, threshold, path):
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.boxplot(_drawn([clean, *domain.values()], threshold), tick_labels=["held-out clean"] + list(domain),
               orientation="horizontal")
    ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set_xlabel("DAAIN score (higher = more anomalous)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(out, results, raw, threshold, domain=None, context=None, provenance=None):
    """Writes every file of an evaluation into ``out``; returns the report path.

    :param provenance: what :func:`daain_ros.provenance.provenance` recorded when the run started (default:
        recorded now).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    domain = domain or {}
    domain_rows = {name: {"frames": len(s), "flag_rate": flag_rate(s, threshold),
                          "median": float(np.median(s)), "p90": float(np.quantile(s, 0.9))}
                   for name, s in domain.items()}
    document = {**results, "threshold": threshold, "domain": domain_rows, "context": context or {},
                "provenance": provenance or record_provenance()}
    (out / "results.json").write_text(json.dumps(document, indent=2))
    if len(raw) > 1:  # anomaly kinds were scored (``--kinds ""`` runs the adaptive attackers alone)
        _plot_grid(raw, out / FIGURES["roc"], _roc, "ROC: held-out clean vs anomalous")
        _plot_grid(raw, out / FIGURES["histograms"], lambda ax, c, a: _histogram(ax, c, a, threshold),
                   "DAAIN scores: held-out clean vs anomalous (dashed: threshold)")
    if domain:
        _domain_plot(raw["clean"]["daain"], domain, threshold, out / FIGURES["domain"])
    lines = ["# DAAIN evaluation", "", *provenance_lines(document["provenance"]), "", markdown(document)]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def markdown(document, level=2, figures=""):
    """The evaluation as markdown, from its ``results.json``: the table, the adaptive attackers, other cameras.

    ``report.md`` and ``daain report`` both use it.

    :param level: heading level of its sub-sections.
    :param figures: path prefix of the PNGs (relative to the markdown file); None leaves them out.
    """
    sub = "#" * level
    threshold = document["threshold"]
    lines = [f"Held-out clean frames: {document['clean_frames']}, flagged at the calibrated threshold "
             f"({threshold:.4f}): {document['clean_flag_rate']:.1%}.", ""]
    if document["rows"]:
        lines += ["Cells: AUROC / AUPR (anomalous positive) / FPR at 95 % TPR. Pixel agreement: the attacked "
                  "prediction against the clean one (lower = a stronger attack).", "", _table(document["rows"]), ""]
    if figures is not None and document["rows"]:
        lines += [f"![ROC curves]({figures}{FIGURES['roc']})", "",
                  f"![DAAIN score histograms]({figures}{FIGURES['histograms']})", ""]
    if document.get("adaptive"):
        lines += [f"{sub} Adaptive attackers: what the key buys", "", ADAPTIVE_TEXT, "",
                  _adaptive_table(document["adaptive"]), ""]
    if document.get("domain"):
        lines += [f"{sub} Other cameras and conditions", "", "| source | frames | flagged | median | p90 |",
                  "|---|---|---|---|---|"]
        lines += [f"| {n} | {r['frames']} | {r['flag_rate']:.0%} | {r['median']:.3f} | {r['p90']:.3f} |"
                  for n, r in document["domain"].items()]
        lines += [""] + ([f"![Domain shift]({figures}{FIGURES['domain']})", ""] if figures is not None else [])
    for key, value in (document.get("context") or {}).items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"
