# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain fit``: fits a DAAIN detector on clean frames of a data source and writes the artifact."""

import json
from pathlib import Path

from daain_ros.cli.arguments import non_negative_int, positive_int
from daain_ros.detector.artifact import METADATA, TENSORS, save_detector
from daain_ros.detector.fit import FitConfig, fit_detector
from daain_ros.detector.flow import FlowConfig
from daain_ros.detector.heads import HEAD_KINDS
from daain_ros.device import resolve_device
from daain_ros.errors import DaainError
from daain_ros.evaluation.anomalies import perturb
from daain_ros.io.sources import every_kth, open_source, parse_frames
from daain_ros.segmentation.espnet import load_espnet
from daain_ros.segmentation.network_size import DEFAULT_SIZE


def register(sub):
    parser = sub.add_parser("fit", help="fit a detector on clean frames (a folder, video, bag or Cityscapes tree)")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint the detector watches")
    parser.add_argument("--data", required=True, nargs="+", action="extend", metavar="SRC",
                        help="data sources, in order: image folder or file, video, rosbag2 dir (BAG or BAG:/TOPIC), "
                             "cityscapes:ROOT[:split], synthetic:SEED[:N]; repeatable")
    parser.add_argument("--frames", default=None, help="frame range A:B of each source (half-open)")
    parser.add_argument("--every", type=positive_int, default=1,
                        help="take every K-th frame of each source's range (default 1: all)")
    parser.add_argument("--out", required=True, type=Path, help="detector directory to write")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the detector in --out (its secret key is lost; exports bound to it stop loading)")
    parser.add_argument("--width", type=int, default=DEFAULT_SIZE[0])
    parser.add_argument("--height", type=int, default=DEFAULT_SIZE[1])
    parser.add_argument("--dims", type=positive_int, default=FitConfig.target_dims, help="sampled activations")
    parser.add_argument("--radius", type=float, default=None, help="Poisson-disk radius (overrides --dims)")
    parser.add_argument("--head", choices=HEAD_KINDS, default=FitConfig.head)
    parser.add_argument("--blocks", type=positive_int, default=FlowConfig.blocks)
    parser.add_argument("--hidden", type=positive_int, default=FlowConfig.hidden)
    parser.add_argument("--epochs", type=positive_int, default=FlowConfig.epochs)
    parser.add_argument("--augment", type=non_negative_int, default=FitConfig.augment_copies,
                        help="jittered copies per fit frame")
    parser.add_argument("--target-fpr", type=float, default=FitConfig.target_fpr)
    parser.add_argument("--calibration-folds", type=non_negative_int, default=FitConfig.calibration_folds,
                        help="threshold from out-of-fold scores of every fit frame over this many consecutive "
                             "stretches (default 5); below 2: from the validation frames alone")
    parser.add_argument("--seed", type=int, default=0, help="seed of augmentation and flow training")
    parser.add_argument("--key-seed", type=int, default=None,
                        help="secret seed of the sampling key (default: drawn from the OS; never stored)")
    parser.add_argument("--device", default="auto")
    parallel = parser.add_argument_group("parallel extraction on Ray (training stays in this process)")
    parallel.add_argument("--address", default=None,
                          help="extract the activations on Ray: local (a cluster started on this machine for the "
                               "fit), auto (the one running here, or RAY_ADDRESS) or ray://HOST:10001; default: "
                               "in this process")
    parallel.add_argument("--workers", type=positive_int, default=None,
                          help="Ray workers (default: as many as the cluster's CPUs, or GPUs, hold)")
    parallel.add_argument("--threads-per-worker", type=positive_int, default=1,
                          help="torch threads per worker (default 1)")
    parallel.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per worker (default 0)")
    parser.set_defaults(run=run)


def _config(args):
    return FitConfig(size=(args.width, args.height), target_dims=args.dims, radius=args.radius,
                     key_seed=args.key_seed, augment_copies=args.augment, head=args.head,
                     target_fpr=args.target_fpr, calibration_folds=args.calibration_folds, seed=args.seed,
                     flow=FlowConfig(blocks=args.blocks, hidden=args.hidden, epochs=args.epochs, seed=args.seed))


def run(args):
    """Fit in this process, or with ``--address`` extract the activations on Ray; write the detector."""
    if not args.overwrite and any((args.out / name).exists() for name in (METADATA, TENSORS)):
        raise DaainError(f"{args.out}: holds a detector already, whose secret key a new fit would replace: choose "
                         "another --out, or --overwrite")
    config = _config(args)
    frames = parse_frames(args.frames)
    workers = None
    if args.address is None:
        model = load_espnet(args.model, resolve_device(args.device))
        images = [frame.image for spec in args.data for frame in every_kth(open_source(spec, frames), args.every)]
        detector = fit_detector(model, images, config, anomalies=perturb)
    else:
        from daain_ros.fleet.fit import fit_on_ray  # Ray loads only for a parallel fit

        detector, model, workers = fit_on_ray(args.model, args.data, config, frames=frames, every=args.every,
                                              address=args.address, workers=args.workers,
                                              threads_per_worker=args.threads_per_worker,
                                              gpus_per_worker=args.gpus_per_worker, device=args.device)
    save_detector(detector, args.out, model)
    summary = {"detector": str(args.out), "dims": detector.key.dims, "threshold": float(detector.threshold),
               **detector.metadata["training"]}
    if workers is not None:
        summary["ray"] = workers
    print(json.dumps(summary))
