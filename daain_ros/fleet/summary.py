# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What a fleet run concludes: a row per bag with its verdict, and the fleet's pooled figures.

Everything here comes from each bag's own ``summary.json`` and ``frames.csv`` (as ``daain bag evaluate``
wrote them) and from what the workers reported, so a resumed run and a fresh one conclude the same.
AUROC, AUPR and FPR95 pool the frames of all labelled bags: their clean frames against each kind's.
"""

import csv
import math

import numpy as np

from daain_ros.evaluation.bag_report import kind_metrics
from daain_ros.evaluation.metrics import ratio
from daain_ros.fleet.criteria import ERROR, FAIL, PASS, Criteria, is_labelled, judge, run_seconds

EVALUATED, SKIPPED, UNREADABLE, FAILED = "evaluated", "skipped", "unreadable", "failed"
STATUSES = (EVALUATED, SKIPPED, UNREADABLE, FAILED)
VERDICTS = (PASS, FAIL, ERROR)
CLEAN, LABELLED = "clean", "labelled"
ROW_KEYS = ("name", "bag", "status", "kind", "frames", "unreadable", "flagged", "flag_rate", "debounced_flagged",
            "longest_run_frames", "longest_run_s", "segments", "segments_detected", "verdict", "reasons",
            "criteria", "error", "wall_s", "frames_per_s", "worker", "restarted")


def _from_summary(summary):
    segments = summary.get("segments") or []
    return {"kind": LABELLED if is_labelled(summary) else CLEAN, "frames": summary["frames"],
            "unreadable": summary["unreadable"], "flagged": summary["flagged"],
            "flag_rate": summary["flagged_share"], "debounced_flagged": summary["debounced_flagged"],
            "longest_run_frames": summary["longest_debounced_run"]["frames"],
            "longest_run_s": run_seconds(summary), "segments": len(segments),
            "segments_detected": sum(1 for s in segments if s["detected"])}


def bag_row(bag, status, summary=None, error=None, criteria=None, worker=None, wall_s=None, restarted=False):
    """One bag's row of the report: its figures, its verdict against ``criteria`` and why.

    :param criteria: a :class:`~daain_ros.fleet.criteria.CriteriaFile`, or None (a bag that could be
        evaluated passes).
    """
    row = dict.fromkeys(ROW_KEYS)
    row.update(name=bag.name, bag=str(bag.path), status=status, error=error, worker=worker,
               restarted=bool(restarted), reasons=[], wall_s=None if wall_s is None else round(wall_s, 3))
    limits, row["criteria"] = (Criteria(), None) if criteria is None else criteria.for_bag(bag.name, bag.path)
    if summary is not None:
        row.update(_from_summary(summary))
        row["frames_per_s"] = ratio(summary["frames"], wall_s) if status == EVALUATED else None
    if summary is None or status == FAILED:
        row.update(verdict=ERROR, reasons=[error or "not evaluated"])
    else:
        row["verdict"], row["reasons"] = judge(summary, limits)
    return row


def _pooled_frames(rows, bags_by_name):
    """Labels and scores of every frame of the labelled bags, from their frames.csv."""
    kinds, scores = [], []
    for row in rows:
        if row["kind"] != LABELLED:
            continue
        with open(bags_by_name[row["name"]].out / "frames.csv", newline="") as table:
            for frame in csv.DictReader(table):
                kinds.append(frame["label"])
                scores.append(float(frame["score"]) if frame["score"] else math.nan)
    return np.asarray(kinds, dtype=object), np.asarray(scores, float)


def _clean(rows):
    clean = [row for row in rows if row["kind"] == CLEAN]
    frames = sum(row["frames"] for row in clean)
    flagged = sum(row["flagged"] for row in clean)
    debounced = sum(row["debounced_flagged"] for row in clean)
    return {"bags": len(clean), "frames": frames, "flagged": flagged, "flag_rate": ratio(flagged, frames),
            "debounced_flagged": debounced, "debounced_flag_rate": ratio(debounced, frames),
            "passed": sum(1 for row in clean if row["verdict"] == PASS)}


def _labelled(rows, bags_by_name):
    labelled = [row for row in rows if row["kind"] == LABELLED]
    kinds, scores = _pooled_frames(labelled, bags_by_name)
    return {"bags": len(labelled), "frames": int(kinds.size),
            "segments": sum(row["segments"] for row in labelled),
            "segments_detected": sum(row["segments_detected"] for row in labelled),
            "passed": sum(1 for row in labelled if row["verdict"] == PASS),
            "metrics": kind_metrics(kinds, scores) if kinds.size else {}}


def overall(rows, bags, timing):
    """The fleet's figures: counts by status and verdict, clean flag rate, pooled metrics, throughput.

    :param timing: ``wall_s`` of the run and ``frames`` evaluated in it (skipped bags not counted).
    """
    bags_by_name = {bag.name: bag for bag in bags}
    counts = {"bags": len(rows),
              "status": {status: sum(1 for row in rows if row["status"] == status) for status in STATUSES},
              "verdict": {verdict: sum(1 for row in rows if row["verdict"] == verdict) for verdict in VERDICTS}}
    throughput = dict(timing, frames_per_s=ratio(timing["frames"], timing["wall_s"]))
    return {"counts": counts, "clean": _clean(rows), "labelled": _labelled(rows, bags_by_name),
            "throughput": throughput}
