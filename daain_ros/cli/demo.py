# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain demo``: a drive with injected anomalies played into the live node; timeline, report, one verdict line.

Exit codes: 0 when every injected segment was flagged, 1 when the demo ran but missed a segment, 2 when
it could not run (a missing or mismatched model or detector, a node that did not start, nothing recorded).
"""

import argparse
from pathlib import Path

from daain_ros.demo.drive import DEFAULT_KINDS, DEMO_EPS, DemoConfig, run_demo
from daain_ros.errors import DaainError


def _kinds(text):
    from daain_ros.evaluation.anomalies import is_attack

    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    try:
        for kind in kinds:
            is_attack(kind)  # an unknown kind stops the demo before anything runs
    except DaainError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return kinds


def _rate(text):
    rate = float(text)
    if not rate > 0:
        raise argparse.ArgumentTypeError(f"{text}: expected frames per second > 0")
    return rate


def _eps(text):
    eps = float(text)
    if not 0 < eps <= 1:
        raise argparse.ArgumentTypeError(f"{text}: expected an L-inf budget in (0, 1], e.g. 0.0314 for 8/255")
    return eps


def register(sub):
    parser = sub.add_parser("demo", help="play a drive with injected anomalies into detector_node and report",
                            description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="ESPNet checkpoint (default: the packaged default ESPNet)")
    parser.add_argument("--detector", default=None,
                        help="detector directory fitted for --model (default: the packaged default detector)")
    parser.add_argument("--data", default=None,
                        help="footage to make the drive from: video, image folder, bag or synthetic:SEED[:N] "
                             "(default: a generated drive); at most 200 frames are used")
    parser.add_argument("--frames", default=None, help="frame range A:B of --data")
    parser.add_argument("--kinds", type=_kinds, default=DEFAULT_KINDS,
                        help=f"comma-separated anomaly kinds to inject (default {','.join(DEFAULT_KINDS)})")
    parser.add_argument("--rate", type=_rate, default=None,
                        help="frames per second to play (default: what this machine keeps up with, at most 8)")
    parser.add_argument("--quick", action="store_true", help="a short drive (48 frames), for tests")
    parser.add_argument("--seed", type=int, default=0, help="seed of the injected anomalies")
    parser.add_argument("--eps", type=_eps, default=DEMO_EPS,
                        help="L-inf budget of injected attacks, pixel values in [0, 1] (default 8/255)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    parser.set_defaults(run=run)


def run(args):
    config = DemoConfig(out=args.out, model=args.model, detector=args.detector, data=args.data, frames=args.frames,
                        kinds=args.kinds, quick=args.quick, rate_hz=args.rate, device=args.device, seed=args.seed,
                        eps=args.eps)
    summary = run_demo(config, echo=lambda line: print(line, flush=True))
    return 0 if summary["segments_flagged"] == summary["segments"] else 1
