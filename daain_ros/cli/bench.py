# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bench``: timings and peak memory of ESPNet, DAAIN and the reference's gather; node and fit costs."""

from pathlib import Path

import torch

from daain_ros.bench.report import raise_if_error, table, write_json
from daain_ros.bench.runner import (BATCHES, FRESH_DIMS, SECTIONS, SIZES, BenchConfig, check_devices, parse_sizes,
                                    run_bench)
from daain_ros.cli.arguments import positive_int
from daain_ros.demo.default_assets import default_model_path
from daain_ros.errors import DaainError


def register(sub):
    parser = sub.add_parser("bench", help="benchmark DAAIN's overhead over ESPNet, the reference, the node and fit")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: fewer frames, no 1024x512 batch 8, no reference, a short node run")
    parser.add_argument("--model", type=Path, default=None,
                        help="ESPNet checkpoint (default: the packaged default model)")
    parser.add_argument("--footage", default=None, metavar="VIDEO",
                        help="video whose first frames are timed (default: procedural frames)")
    parser.add_argument("--detector", type=Path, default=None,
                        help="fitted detector directory, used at its fitted size (default: a fresh seeded key "
                             "and an unfitted detector of 2,000 dims per size)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help=f"torch intra-op threads (default: torch's, {torch.get_num_threads()} here)")
    parser.add_argument("--frames", type=positive_int, default=None,
                        help="timed batches per size and batch size after warm-up (default 30, quick 3)")
    parser.add_argument("--block", type=positive_int, default=1,
                        help="timed batches each variant runs in a row before the next variant (default 1: "
                             "alternate every batch; more: warm caches, as in a node that runs one model)")
    parser.add_argument("--dims", type=positive_int, default=FRESH_DIMS,
                        help="dimensions of the fresh detectors (without --detector) and of the fit section")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES), help="network sizes WxH,...")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes, comma-separated")
    parser.add_argument("--devices", default=None, help="cpu and/or cuda, comma-separated (default: cpu, and "
                                                        "cuda when present)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the DAAIN pipeline against ESPNet alone (torch profiler, first size)")
    parser.add_argument("--skip", default="", help=f"sections to leave out: {', '.join(SECTIONS)}")
    parser.set_defaults(run=run)


def _ints(text, what):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise DaainError(f"{what} {text!r}: expected comma-separated integers") from exc
    if any(v <= 0 for v in values):
        raise DaainError(f"{what} {text!r}: expected positive integers")
    return values


def run(args):
    skip = tuple(s for s in args.skip.split(",") if s)
    unknown = set(skip) - set(SECTIONS)
    if unknown:
        raise DaainError(f"--skip {args.skip!r}: expected some of {', '.join(SECTIONS)}")
    config = BenchConfig(model=args.model or default_model_path(), detector=args.detector, footage=args.footage,
                         quick=args.quick, sizes=parse_sizes(args.sizes), batches=_ints(args.batches, "--batches"),
                         devices=check_devices(args.devices.split(",")) if args.devices else None,
                         iterations=args.frames, threads=args.threads or torch.get_num_threads(), dims=args.dims,
                         skip=skip, profile=args.profile, block=args.block)
    result = run_bench(config, log=lambda line: print(line, flush=True))
    write_json(result, args.out)
    print(table(result))
    print(f"wrote {args.out}")
    raise_if_error(result)
