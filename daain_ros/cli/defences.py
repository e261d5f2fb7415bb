# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain defences``: the defences tried against the key-agnostic attacker, measured and reported (issue 16)."""

from pathlib import Path

import torch

from daain_ros.cli.arguments import add_held_out_options, fraction, held_out_images, positive_int, source_images
from daain_ros.evaluation import defence_report
from daain_ros.evaluation.adaptive import AdaptiveConfig
from daain_ros.evaluation.attacks import check_budget
from daain_ros.evaluation.defences import DefenceConfig, defence_study
from daain_ros.pipeline import Pipeline
from daain_ros.provenance import provenance


def register(sub):
    parser = sub.add_parser("defences", help="measure the defences tried against the key-agnostic attacker")
    add_held_out_options(parser)
    parser.add_argument("--fit-data", required=True, help="clean fit-split source: statistics and calibration")
    parser.add_argument("--fit-frames", default=None, help="frame range A:B of --fit-data")
    parser.add_argument("--statistics-stride", type=positive_int, default=DefenceConfig.statistics_stride,
                        help="every Nth fit frame fits the attackers' statistics, the others calibrate the defences")
    parser.add_argument("--eps", type=fraction, default=4 / 255, help="the attack budget (e.g. 4/255)")
    parser.add_argument("--adaptive-steps", type=positive_int, default=AdaptiveConfig.steps)
    parser.add_argument("--adaptive-restarts", type=positive_int, default=AdaptiveConfig.restarts)
    parser.add_argument("--adaptive-every", type=positive_int, default=10, help="attack every Nth held-out frame")
    parser.add_argument("--adaptive-frames", type=positive_int, default=6, help="at most this many of them")
    parser.add_argument("--quality", type=positive_int, default=DefenceConfig.quality, help="the JPEG check's quality")
    parser.add_argument("--directions", type=positive_int, default=DefenceConfig.directions,
                        help="secret projections per leaf layer")
    parser.add_argument("--draws", type=positive_int, default=DefenceConfig.draws,
                        help="random grid offsets per step of the attacker adapted to the secret offset")
    parser.add_argument("--students", type=positive_int, default=DefenceConfig.students,
                        help="surrogate students of the attackers adapted to the secret student")
    parser.add_argument("--student-epochs", type=positive_int, default=DefenceConfig.student_epochs,
                        help="training epochs of each student and of the secret student's twin")
    parser.add_argument("--clean-rate", type=fraction, default=DefenceConfig.clean_rate,
                        help="share of calibration frames each defence's threshold flags")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, type=Path)
    parser.set_defaults(run=run)


def run(args):
    origin = provenance()  # the machine's load as the run starts
    check_budget(args.eps, None)  # the settings are checked before anything loads
    config = DefenceConfig(quality=args.quality, clean_rate=args.clean_rate, directions=args.directions,
                           draws=args.draws, statistics_stride=args.statistics_stride,
                           students=args.students, student_epochs=args.student_epochs,
                           attack=AdaptiveConfig(steps=args.adaptive_steps, restarts=args.adaptive_restarts))
    torch.manual_seed(args.seed)
    pipeline = Pipeline.load(args.model, args.detector, args.device)
    held_out = held_out_images(args)
    targets = held_out[::args.adaptive_every][:args.adaptive_frames]
    fit = source_images(args.fit_data, args.fit_frames)
    document = defence_study(pipeline, fit, held_out, targets, args.eps, config, args.seed)
    document["context"] = {"detector": args.detector, "model": pipeline.model.name,
                           "held-out": f"{args.data} {args.frames or 'all'}; also {', '.join(args.also) or 'none'}",
                           "attacked": f"every {args.adaptive_every}th held-out frame, at most {args.adaptive_frames}",
                           "fit frames": f"{args.fit_data} {args.fit_frames or 'all'}",
                           "attack": f"{args.adaptive_steps} steps x {args.adaptive_restarts} restarts",
                           "seed": args.seed}
    document["provenance"] = origin
    print(defence_report.write(args.out, document))
