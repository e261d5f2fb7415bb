# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain fleet``: evaluate many bags on Ray, benchmark it, and size a cluster from the benchmark.

Only the arguments live here; each command calls one library function: :func:`daain_ros.fleet.evaluate.evaluate_fleet`,
:func:`daain_ros.fleet.bench.run_bench` and :func:`daain_ros.fleet.sizing.write_sizing`. Ray and torch load
when a command runs, so the CLI starts without them.
"""

import json
from pathlib import Path

from daain_ros.cli.arguments import positive_int
from daain_ros.demo.default_assets import MODEL_FILE

ADDRESS_HELP = ("Ray cluster: local (start one on this machine for the run; default), auto (the one running "
                "here, or RAY_ADDRESS) or ray://HOST:10001 (a remote head through Ray Client)")
#: The keys of fleet.json's overall counts that ``daain fleet evaluate`` prints.
PRINTED = ("bags", "verdict", "status")


def register(sub):
    """Add ``daain fleet`` and its sub-commands to the parser's sub-commands."""
    parser = sub.add_parser("fleet", help="evaluate many bags on Ray workers; benchmark and size the cluster",
                            description="Evaluate many bags on Ray workers, benchmark it, size a cluster.")
    fleet_sub = parser.add_subparsers(dest="fleet_command", required=True, metavar="FLEET_COMMAND")
    for register_command in (_register_evaluate, _register_bench, _register_sizing):
        register_command(fleet_sub)


def _add_workers(parser):
    parser.add_argument("--address", default="local", help=ADDRESS_HELP)
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="Ray workers, each loading the model once (default: as many as the cluster's CPUs, "
                             "or GPUs with --gpus-per-worker, hold)")
    parser.add_argument("--threads-per-worker", type=positive_int, default=1,
                        help="torch threads (and CPUs reserved) per worker (default 1)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0,
                        help="GPUs reserved per worker, e.g. 1 or 0.5 (default 0: CPU workers)")


def _register_evaluate(sub):
    parser = sub.add_parser("evaluate", help="evaluate bags as 'daain bag evaluate' does, on Ray workers, and "
                                             "judge each against criteria",
                            description="Evaluates each bag as 'daain bag evaluate' does into OUT/bags/<name>/, "
                                        "judges it against --criteria and writes OUT/fleet.json, fleet.md, "
                                        "fleet.csv and fleet.png. Exit code 0 when every bag passed, 1 otherwise.")
    parser.add_argument("bags", nargs="+", metavar="BAG_OR_GLOB",
                        help="rosbag2 directories, .mcap or .db3 files, or glob patterns (quote them)")
    parser.add_argument("--detector", required=True, help="detector directory")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint the detector was fitted for")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    _add_workers(parser)
    parser.add_argument("--criteria", type=Path, default=None,
                        help="pass/fail criteria YAML (docs/fleet.md); default: a bag passes when it was evaluated")
    parser.add_argument("--resume", action="store_true",
                        help="skip bags whose outputs in OUT are complete with these settings")
    parser.add_argument("--topic", default=None, help="image topic (default: each bag's labels' topic or its only "
                                                      "image topic)")
    parser.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    parser.add_argument("--debounce-k", type=int, default=1, help="flag while k of the last n frames are anomalous")
    parser.add_argument("--debounce-n", type=int, default=1, help="debounce window n (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="frames per forward pass (default 8)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when the worker has a GPU), cpu, cuda")
    parser.set_defaults(run=_run_evaluate, torch_free=True)  # the workers load torch; the driver never does


def _run_evaluate(args):
    from daain_ros.fleet.evaluate import evaluate_fleet

    doc = evaluate_fleet(args.bags, detector=args.detector, model=args.model, out=args.out, address=args.address,
                         workers=args.workers, threads_per_worker=args.threads_per_worker,
                         gpus_per_worker=args.gpus_per_worker, criteria=args.criteria, resume=args.resume,
                         topic=args.topic, threshold=args.threshold, debounce_k=args.debounce_k,
                         debounce_n=args.debounce_n, batch_size=args.batch_size, device=args.device)
    counts = doc["overall"]["counts"]
    print(json.dumps({**{key: counts[key] for key in PRINTED}, "passed": doc["passed"], "out": str(args.out)}))
    return 0 if doc["passed"] else 1


def _register_bench(sub):
    parser = sub.add_parser("bench", help="time sequential 'daain bag evaluate' against 'daain fleet evaluate' on "
                                          "the same bags; JSON for the sizing note",
                            description="Makes BAGS bags of FRAMES frames, evaluates them one after another with "
                                        "'daain bag evaluate' and with 'daain fleet evaluate' on a local cluster, "
                                        "and measures Ray's start-up and scheduling against the same work in one "
                                        "process. Writes JSON with the date, commit, machine and command.")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write (e.g. docs/fleet/bench.json)")
    parser.add_argument("--model", type=Path, default=None,
                        help=f"ESPNet checkpoint (default: the packaged {MODEL_FILE})")
    parser.add_argument("--detector", type=Path, default=None,
                        help="detector directory (default: the packaged one with the default model, else a quick "
                             "fit on the footage: the same per-frame cost as a full fit of the same dims)")
    parser.add_argument("--footage", default=None,
                        help="video or other source the bags are cut from (default: synthetic streets)")
    parser.add_argument("--bags", type=positive_int, default=10, help="bags (default 10)")
    parser.add_argument("--frames", type=positive_int, default=30, help="frames per bag (default 30)")
    parser.add_argument("--workers", type=positive_int, default=2, help="fleet workers of one thread each (default 2)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the bags and outputs (default: a temporary one, removed)")
    parser.set_defaults(run=_run_bench)


def _run_bench(args):
    from daain_ros.fleet.bench import BenchConfig, run_bench

    config = BenchConfig(model=args.model, detector=args.detector, footage=args.footage, bags=args.bags,
                         frames=args.frames, workers=args.workers)
    result = run_bench(config, args.out, work=args.work)
    print(json.dumps({"out": str(args.out), **result["goals"]}))


def _register_sizing(sub):
    parser = sub.add_parser("sizing", help="write the sizing note of a markdown file from 'daain fleet bench' JSON",
                            description="Renders the cluster sizing (frames/hour per worker, worker-hours for N "
                                        "bags, the cluster for a validation of HOURS of driving) from the "
                                        "benchmark's JSON into DOC, between its sizing markers.")
    parser.add_argument("bench", type=Path, metavar="BENCH_JSON", help="JSON of 'daain fleet bench'")
    parser.add_argument("--doc", type=Path, required=True, help="markdown file with the sizing markers "
                                                                "(docs/fleet.md)")
    parser.add_argument("--hours", type=float, default=10_000, help="hours of driving to validate (default 10000)")
    parser.add_argument("--rate", type=float, default=10.0, help="camera frames per second (default 10)")
    parser.add_argument("--bag-minutes", type=float, default=10.0, help="minutes per bag (default 10)")
    parser.set_defaults(run=_run_sizing, torch_free=True)


def _run_sizing(args):
    from daain_ros.fleet.sizing import SizingQuestion, write_sizing

    question = SizingQuestion(hours=args.hours, rate_hz=args.rate, bag_minutes=args.bag_minutes)
    print(f"wrote {write_sizing(args.bench, args.doc, question)}")
