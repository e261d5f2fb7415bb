# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain train-default``: trains the small default ESPNet on generated streets (:mod:`daain_ros.demo.train_default`).

Writes into ``--out`` (default ``out/default-model``), never into the installed package: to make a new
default, copy the two files into ``daain_ros/demo/default/`` of a source checkout.
"""

import json
from pathlib import Path

import torch

from daain_ros.cli.arguments import positive_int
from daain_ros.demo.train_default import TrainConfig, train_default

DEFAULT_OUT = Path("out") / "default-model"


def register(sub):
    parser = sub.add_parser("train-default", help="train the small default ESPNet on generated street scenes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="directory for the .safetensors and .json (default %(default)s)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--frames", type=positive_int, default=TrainConfig.frames,
                        help="distinct generated training frames")
    parser.add_argument("--epochs", type=positive_int, default=TrainConfig.epochs)
    parser.add_argument("--p", type=int, default=TrainConfig.p, help="ESP blocks at level 2")
    parser.add_argument("--q", type=int, default=TrainConfig.q, help="ESP blocks at level 3")
    parser.add_argument("--width", type=int, default=TrainConfig.width)
    parser.add_argument("--height", type=int, default=TrainConfig.height)
    parser.add_argument("--crop-width", type=int, default=TrainConfig.crop_width,
                        help="train on full-height random crops this wide (multiple of 8; the width: none)")
    parser.add_argument("--batch", type=positive_int, default=TrainConfig.batch)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--eval-frames", type=positive_int, default=TrainConfig.eval_frames,
                        help="held-out frames for the reported mIoU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.set_defaults(run=run)


def run(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(seed=args.seed, frames=args.frames, epochs=args.epochs, p=args.p, q=args.q,
                         width=args.width, height=args.height, crop_width=args.crop_width, batch=args.batch,
                         lr=args.lr, eval_frames=args.eval_frames)
    print(json.dumps(train_default(config, args.out)))
