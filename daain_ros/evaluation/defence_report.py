# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Writes the defence study: ``defences.json`` (every number) and ``report.md`` (its tables)."""

import json
from pathlib import Path

import numpy as np

from daain_ros.provenance import markdown_lines

JSON_FILE = "defences.json"

TEXT = (
    "The key-agnostic attacker keeps every leaf layer's activations as typical as on clean fit frames, position by "
    "position, while it damages the segmentation; two of its variants are also adapted to the JPEG check (its "
    "gradient passed straight through the compression, BPDA; on a secret grid offset, random offsets at every "
    "step, EOT), and two to the secret student (surrogate students of its own, trained the same way on the same "
    "frames, EOT), one aimed at its calibrated threshold and one at its held-out threshold (below). Each defence's "
    "threshold flags {rate:.0%} of clean fit frames that the attackers' statistics did not use, later than any the "
    "defence learnt from: the projections learn from the first half's fit frames and are calibrated on the second "
    "half's; the student learns from every statistics frame, and its threshold is its twin's (the same recipe from "
    "another secret seed), which learns from the first half's statistics frames and is calibrated on the second "
    "half's frames. It judges the attacked frames together with DAAIN at its calibrated threshold. A success: "
    "damaged (pixel agreement with the clean prediction <= 0.5) and flagged by neither. 'Held-out threshold': the "
    "defence's threshold set to flag {rate:.0%} of the held-out clean frames themselves, which favours the defence.")


def _span(values, digits=3):
    values = np.asarray(values, dtype=float)
    return f"{values.min():.{digits}f}-{values.max():.{digits}f}"


def _attackers_table(document):
    lines = ["| attacker | frames | damaged | DAAIN flagged | success against DAAIN | pixel agreement | DAAIN score "
             "| s / image |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {a['attacker']} | {a['frames']} | {sum(a['damaged'])} | {sum(a['daain_flagged'])} | "
              f"{a['success_rate']:.0%} | {_span(a['pixel_agreement'])} | {_span(a['daain_scores'])} | "
              f"{a['seconds_per_image']:.0f} |" for a in document["attackers"]]
    return "\n".join(lines)


def _defences_table(document):
    lines = ["| defence | threshold | held-out clean flagged (with DAAIN) | attacker | adapted to it | values | "
             "flagged | success | success, held-out threshold | over all 64 offsets |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for defence in document["defences"]:
        clean = f"{defence['clean_flag_rate']:.1%} ({defence['clean_flag_rate_with_daain']:.1%})"
        side = ">" if defence["flags"] == "above" else "<"
        for index, row in enumerate(defence["attackers"]):
            head = (f"| {defence['defence']} | {side} {defence['threshold']:.3f} | {clean} |" if index == 0
                    else "| | | |")
            shares = row.get("success_share_over_offsets")
            lines.append(f"{head} {row['attacker']} | {'yes' if row['adapted'] else 'no'} | {_span(row['values'])} "
                         f"| {sum(row['flagged'])} of {len(row['flagged'])} | {row['success_rate']:.0%} | "
                         f"{row['success_rate_held_out_threshold']:.0%} | "
                         f"{f'{np.mean(shares):.0%} ({_span(shares, 2)})' if shares else '-'} |")
    return "\n".join(lines)


def markdown(document, level=2, figures=None):
    """The study as markdown from its JSON (``report.md`` and ``daain report`` both use it)."""
    lines = [f"Budget {round(document['eps'] * 255)}/255 on {document['frames']} frames. DAAIN's threshold "
             f"{document['threshold']:.4f} flags {document['clean_flag_rate']:.1%} of the "
             f"{document['clean_frames']} held-out clean frames. Defences calibrated on "
             f"{document['calibration_frames']} fit frames (the projections and the student's twin on the "
             f"{document['late_calibration_frames']} of the second half); the attackers' statistics on "
             f"{document['statistics_frames']}. Each student trained on {document['learning_frames']} of them in "
             f"{document['seconds_per_student']:.0f} s; the twin on the first half's "
             f"{document['twin_learning_frames']}.", "",
             TEXT.format(rate=document["clean_rate"]), "",
             _attackers_table(document), "", "Defences (values: the defence's statistic on the attacked frames; "
             "'over all 64 offsets': the share of grid offsets at which a frame succeeds, mean and range over the "
             "frames):", "", _defences_table(document), ""]
    for defence in document["defences"]:
        lines.append(f"- `{defence['defence']}`: {defence['description']}; flags values {defence['flags']} the "
                     f"threshold (held-out threshold {defence['held_out_threshold']:.3f})")
    for key, value in (document.get("context") or {}).items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"


def write(out, document):
    """Writes ``defences.json`` and ``report.md`` into ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_FILE).write_text(json.dumps(document, indent=2))
    path = out / "report.md"
    path.write_text("\n".join(["# Defences against the key-agnostic attacker", "",
                               *markdown_lines(document.get("provenance")), "", markdown(document)]))
    return path
