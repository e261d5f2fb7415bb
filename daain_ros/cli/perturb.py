# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain perturb``: adversarial or corrupted copies of image files, one kind at a time."""

import sys
from pathlib import Path

from daain_ros.cli.arguments import fraction, positive_int
from daain_ros.errors import DaainError
from daain_ros.evaluation import anomalies
from daain_ros.io.images import read_bgr, write_image
from daain_ros.segmentation.network_size import DEFAULT_SIZE, check_network_size

DESCRIPTION = """Writes each perturbed image as OUT/<stem>.png (lossless, so JPEG artefacts stay as made).
Attacks (fgsm, fgsm-road, ifgsm, ifgsm-person, pgd, uap) need --model and differentiate through ESPNet's
preprocessing at --width x --height; their L-inf budget --eps is in [0, 1] pixel units (4/255 default).
`uap` fits one universal perturbation on the given images themselves and applies it to them (to attack
held-out frames use daain_ros.evaluation.attacks.fit_uap and apply_uap). Corruptions use --severity 1-5; image i
(in the order given) gets the seed SEED + i."""


def register(sub):
    parser = sub.add_parser("perturb", help="write attacked or corrupted copies of images",
                            description=DESCRIPTION)
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    parser.add_argument("--list", action="store_true", help="name every kind and exit")
    parser.add_argument("--kind", help=f"one of: {', '.join(anomalies.KINDS)}")
    parser.add_argument("--severity", type=int, default=3, help="corruption severity 1-5 (default 3)")
    parser.add_argument("--eps", type=fraction, default=4 / 255, help="attack L-inf budget, e.g. 4/255 (default)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="iterations of ifgsm, pgd and the uap fit (10)")
    parser.add_argument("--model", help="ESPNet checkpoint (attacks only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=DEFAULT_SIZE[0], help="network width for attacks")
    parser.add_argument("--height", type=int, default=DEFAULT_SIZE[1], help="network height for attacks")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="output folder")
    parser.set_defaults(run=run)


def _list():
    for kind in anomalies.KINDS:
        print(f"{kind}\t{'attack' if anomalies.is_attack(kind) else 'corruption'}")


def _load_model(args):
    if not anomalies.is_attack(args.kind):
        return None
    anomalies.require_model(args.kind, args.model)
    from daain_ros.device import resolve_device
    from daain_ros.segmentation.espnet import load_espnet
    return load_espnet(args.model, resolve_device(args.device))


def run(args):
    if args.list:
        return _list()
    if args.kind is None or not args.images or args.out is None:
        raise DaainError("expected --kind KIND, at least one IMAGE and --out DIR (or --list)")
    model = _load_model(args)
    size = check_network_size(args.width, args.height)
    images = [read_bgr(path) for path in args.images]
    perturbed = anomalies.perturb_each_size(args.kind, images, severity=args.severity, eps=args.eps, model=model,
                                            size=size, seed=args.seed, steps=args.steps)
    for path, image in zip(args.images, perturbed):
        write_image(args.out / f"{Path(path).stem}.png", image)
    print(f"{len(images)} images ({args.kind}) written to {args.out}", file=sys.stderr)
