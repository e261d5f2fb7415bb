# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain fleet evaluate``: many bags evaluated as ``daain bag evaluate`` does, by Ray workers, and judged.

Each worker loads the pipeline once and evaluates bag after bag into ``OUT/bags/<name>/`` with
:func:`~daain_ros.evaluation.bag_replay.evaluate_bag`, so each bag gets the files ``daain bag evaluate``
writes. The largest bags go first, so no worker is left with a long one at the end. A bag that cannot be
read is reported and the run goes on; a worker that dies is restarted and its bag retried once
(:mod:`daain_ros.fleet.pool`). ``OUT`` must be on a filesystem that this process and every worker see (on a
single machine, any folder).
"""

import sys
import time
from pathlib import Path

from tqdm import tqdm

from daain_ros.errors import DaainError, FleetError
from daain_ros.fleet import report
from daain_ros.fleet.bags import fleet_bags, is_complete, read_summary
from daain_ros.fleet.cluster import LOCAL, connect
from daain_ros.fleet.criteria import read_criteria
from daain_ros.fleet.pool import WorkerPool, WorkerSpec
from daain_ros.fleet.summary import EVALUATED, FAILED, SKIPPED, UNREADABLE, bag_row, overall
from daain_ros.fleet.worker import BagJob, BagWorker
from daain_ros.provenance import provenance
from daain_ros.ros.debounce import KOfN
from daain_ros.thresholds import check_threshold


def _disk_size(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _check_options(debounce_k, debounce_n, batch_size, threads_per_worker, gpus_per_worker, workers, threshold):
    """Options every bag would reject alike are one error before anything starts."""
    KOfN(debounce_k, debounce_n)
    if threshold is not None:
        check_threshold(threshold)
    for name, value, least in (("--batch-size", batch_size, 1), ("--threads-per-worker", threads_per_worker, 1),
                               ("--workers", 1 if workers is None else workers, 1)):
        if value < least:
            raise DaainError(f"{name} {value}: expected at least {least}")
    if gpus_per_worker < 0:
        raise DaainError(f"--gpus-per-worker {gpus_per_worker}: expected a share of a GPU >= 0")


def _to_do(bags, settings, resume):
    """The bags to evaluate now and those a resumed run keeps; without ``resume`` earlier results are refused."""
    if not resume:
        earlier = [bag for bag in bags if bag.out.exists()]
        if earlier:
            raise FleetError(f"{earlier[0].out} exists (and {len(earlier) - 1} more bags' outputs): use --resume "
                             "to keep the complete ones, or a new --out")
        return bags, []
    done = [bag for bag in bags if is_complete(bag, settings)]
    return [bag for bag in bags if bag not in done], done


def _outcome_row(bag, outcome, criteria):
    """The row of a bag a worker ran: evaluated, unreadable (the core's error) or failed (a crash)."""
    if outcome.failure:
        return bag_row(bag, FAILED, error=outcome.failure, criteria=criteria, restarted=outcome.restarted)
    value = outcome.value
    status = UNREADABLE if value["error"] else EVALUATED
    return bag_row(bag, status, value["summary"], value["error"], criteria, outcome.worker["pid"], value["wall_s"],
                   outcome.restarted)


def _run(todo, spec, options, count, criteria, progress):
    """Rows of the bags evaluated now, by output folder, and the workers' records."""
    jobs = {str(bag.out): bag for bag in todo}
    order = sorted(todo, key=lambda bag: -_disk_size(bag.path))
    rows = {}
    with WorkerPool(spec, count) as pool, \
            tqdm(total=len(todo), desc="fleet bags", unit="bag", disable=not progress, position=0) as bags_bar, \
            tqdm(desc="fleet frames", unit="frame", disable=not progress, position=1) as frames_bar:
        for outcome in pool.results([BagJob(str(bag.path), str(bag.out), options) for bag in order]):
            row = _outcome_row(jobs[outcome.item.out], outcome, criteria)
            rows[outcome.item.out] = row
            bags_bar.update(1)
            frames_bar.update(row["frames"] or 0)
            bags_bar.set_postfix(failed=sum(1 for r in rows.values() if r["verdict"] != "pass"), refresh=False)
        return rows, pool.started


def evaluate_fleet(bags, *, detector, model, out, address=LOCAL, workers=None, threads_per_worker=1,
                   gpus_per_worker=0.0, criteria=None, resume=False, topic=None, threshold=None, debounce_k=1,
                   debounce_n=1, batch_size=8, device="auto", argv=None, progress=True):
    """Evaluates every bag on Ray, judges each against ``criteria`` and writes the fleet report to ``out``.

    :param bags: bag paths or glob patterns (:func:`daain_ros.fleet.bags.expand`).
    :param workers: Ray actors, each with ``threads_per_worker`` torch threads (and CPUs) and
        ``gpus_per_worker`` GPUs; default as many as the cluster holds, at most one per bag.
    :param criteria: a criteria YAML file (:mod:`daain_ros.fleet.criteria`), or None.
    :param resume: keep the bags whose outputs are complete with these settings; without it, ``out`` must not
        hold outputs of any of the bags.
    :param argv: the command line recorded in fleet.json and in each bag's summary (default ``sys.argv``).
    :returns: the fleet document, as in ``fleet.json``; its ``passed`` says whether every bag passed.
    """
    _check_options(debounce_k, debounce_n, batch_size, threads_per_worker, gpus_per_worker, workers, threshold)
    started, out, argv = time.perf_counter(), Path(out), list(sys.argv if argv is None else argv)
    origin, criteria_file = provenance(argv), read_criteria(criteria) if criteria else None
    fleet = fleet_bags(bags, out)
    settings = {"model": str(model), "detector": str(detector), "batch_size": batch_size,
                "debounce": {"k": debounce_k, "n": debounce_n}}
    todo, done = _to_do(fleet, {**settings, **({} if threshold is None else {"threshold": threshold})}, resume)
    rows, started_workers, cluster, count = {}, [], None, 0
    if todo:
        local_cpus = None if workers is None or address != LOCAL else workers * threads_per_worker
        with connect(address, num_cpus=local_cpus) as joined:
            cluster = joined.to_dict()
            count = min(joined.worker_count(threads_per_worker, gpus_per_worker, workers), len(todo))
            options = tuple(sorted({"topic": topic, "debounce_k": debounce_k, "debounce_n": debounce_n,
                                    "batch_size": batch_size}.items()))
            spec = WorkerSpec(BagWorker, (str(model), str(detector), device, threshold, threads_per_worker, argv),
                              threads_per_worker, gpus_per_worker)
            rows, started_workers = _run(todo, spec, options, count, criteria_file, progress)
    for bag in done:
        rows[str(bag.out)] = bag_row(bag, SKIPPED, read_summary(bag), criteria=criteria_file)
    wall_s = time.perf_counter() - started
    ordered = [rows[str(bag.out)] for bag in fleet]
    frames = sum(row["frames"] or 0 for row in ordered if row["status"] in (EVALUATED, UNREADABLE))
    doc = {"settings": {**settings, "threshold": threshold, "topic": topic, "device": device, "out": str(out)},
           "criteria": None if criteria_file is None else criteria_file.to_dict(),
           "bags": ordered,
           "overall": overall(ordered, fleet, {"frames": frames, "wall_s": round(wall_s, 3)}),
           "workers": {"address": address, "count": count, "threads_per_worker": threads_per_worker,
                       "gpus_per_worker": gpus_per_worker, "cluster": cluster, "started": started_workers},
           "passed": all(row["verdict"] == "pass" for row in ordered),
           "provenance": origin}
    return report.write(out, doc, _segments(fleet, ordered))


def _segments(bags, rows):
    """Every labelled segment of the bags with a summary, for the plot."""
    segments = []
    for bag, row in zip(bags, rows):
        summary = read_summary(bag) if row["kind"] == "labelled" else None
        segments.extend((summary or {}).get("segments") or [])
    return segments
