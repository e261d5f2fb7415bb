# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain evaluate``: DAAIN and every baseline on held-out frames under each anomaly kind, as a report."""

from pathlib import Path

import torch

from daain_ros.cli.arguments import (add_held_out_options, held_out_images, non_negative_int, positive_int,
                                     source_images)
from daain_ros.detector.artifact import load_detector
from daain_ros.errors import DaainError
from daain_ros.evaluation.adaptive import AdaptiveConfig
from daain_ros.evaluation.attacks import check_budget
from daain_ros.evaluation.protocol import EvaluationConfig, adaptive_rows, domain_shift, evaluate
from daain_ros.evaluation.report import write_report
from daain_ros.pipeline import Pipeline
from daain_ros.provenance import provenance


def register(sub):
    parser = sub.add_parser("evaluate", help="report DAAIN against baselines on every anomaly kind")
    add_held_out_options(parser)
    parser.add_argument("--every", type=positive_int, default=1, help="use every Nth frame of --data")
    parser.add_argument("--fit-data", default=None,
                        help="clean fit-split source for the Mahalanobis fit and the universal perturbation")
    parser.add_argument("--fit-frames", default=None, help="frame range A:B of --fit-data")
    parser.add_argument("--fit-stride", type=positive_int, default=5, help="use every Nth fit frame")
    parser.add_argument("--domain", action="append", default=[],
                        help="other cameras or conditions: a section of their score distribution")
    parser.add_argument("--surrogate", action="append", default=[], metavar="DIR",
                        help="a detector of the same recipe with another key (repeatable): adds the adaptive "
                        "attackers (white-box, surrogate, surrogate-eot with several, key-agnostic with --fit-data)")
    parser.add_argument("--adaptive-steps", type=positive_int, default=AdaptiveConfig.steps,
                        help="sign steps per restart of each adaptive attacker")
    parser.add_argument("--adaptive-restarts", type=positive_int, default=AdaptiveConfig.restarts,
                        help="rounds of the per-image weight search, each from a random start")
    parser.add_argument("--adaptive-eps", default="2,4,8", help="budgets of the adaptive attackers, in 1/255")
    parser.add_argument("--adaptive-every", type=positive_int, default=10,
                        help="attack every Nth held-out frame with the adaptive attackers")
    parser.add_argument("--adaptive-frames", type=positive_int, default=6, help="at most this many of them")
    parser.add_argument("--kinds", default=",".join(EvaluationConfig().kinds),
                        help="comma-separated anomaly kinds (default: every kind)")
    parser.add_argument("--mc-passes", type=non_negative_int, default=EvaluationConfig.mc_passes,
                        help="MC dropout passes (0 leaves the MC dropout baseline out)")
    parser.add_argument("--attack-steps", type=positive_int, default=EvaluationConfig.attack_steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, type=Path)
    parser.set_defaults(run=run)


def _budgets(text):
    try:
        budgets = tuple(float(value) / 255 for value in text.split(","))
    except ValueError:
        raise DaainError(f"--adaptive-eps {text!r}: expected comma-separated budgets in 1/255, e.g. 2,4,8") from None
    for eps in budgets:
        check_budget(eps, None)
    return budgets


def _adaptive_attackers(args, pipeline):
    """Surrogates, settings and budgets of the adaptive attackers, checked before the long run starts."""
    surrogates = [load_detector(path, pipeline.model) for path in args.surrogate]
    config = AdaptiveConfig(steps=args.adaptive_steps, restarts=args.adaptive_restarts)
    return surrogates, config, _budgets(args.adaptive_eps)


def _adaptive_context(args, fit):
    if not args.surrogate:
        return {}
    return {"adaptive attackers": f"every {args.adaptive_every}th held-out frame, at most {args.adaptive_frames}; "
            f"{args.adaptive_steps} steps x {args.adaptive_restarts} restarts; eps {args.adaptive_eps} /255"
            + ("" if fit else "; key-agnostic left out (it needs --fit-data)")}


def run(args):
    origin = provenance()  # the machine's load as the run starts
    torch.manual_seed(args.seed)
    pipeline = Pipeline.load(args.model, args.detector, args.device)
    clean = held_out_images(args, args.every)
    fit = source_images(args.fit_data, args.fit_frames)[::args.fit_stride] if args.fit_data else None
    config = EvaluationConfig(mc_passes=args.mc_passes, attack_steps=args.attack_steps, seed=args.seed,
                              kinds=tuple(k for k in args.kinds.split(",") if k))
    adaptive = _adaptive_attackers(args, pipeline) if args.surrogate else None
    results, raw = evaluate(pipeline, clean, fit, config)
    if adaptive:
        surrogates, adaptive_config, budgets = adaptive
        frames = clean[::args.adaptive_every][:args.adaptive_frames]
        results["adaptive"] = adaptive_rows(pipeline, surrogates, frames, fit, adaptive_config, budgets, args.seed)
    domain = domain_shift(pipeline, {Path(spec).name: source_images(spec) for spec in args.domain})
    context = {"detector": args.detector, "model": pipeline.model.name, "held-out": args.data,
               "frames": f"{args.frames} every {args.every}", "also": ", ".join(args.also) or "none",
               "fit frames for UAP and Mahalanobis": f"{args.fit_data} {args.fit_frames} every {args.fit_stride}"
               if fit else "none (UAP fitted on the held-out frames, no Mahalanobis)",
               "surrogates": ", ".join(args.surrogate) or "none", **_adaptive_context(args, fit),
               "seed": args.seed, "attack steps": args.attack_steps,
               "MC dropout passes": args.mc_passes}
    print(write_report(args.out, results, raw, pipeline.threshold, domain, context, origin))
