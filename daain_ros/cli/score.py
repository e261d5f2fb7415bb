# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain score``: one line per frame (source, frame, score, threshold, flag); ``--json`` for JSON lines."""

import json
import math
import sys

from daain_ros.cli.arguments import add_backend_options, backend_options, positive_int
from daain_ros.io.sources import open_source, parse_frames
from daain_ros.pipeline import Pipeline

FIELDS = ("source", "frame", "score", "threshold", "flag")


def register(sub):
    parser = sub.add_parser("score", help="score frames with a fitted detector (higher = more anomalous)")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_SRC")
    parser.add_argument("--detector", required=True, help="detector directory")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint the detector was fitted for")
    parser.add_argument("--frames", default=None, help="frame range A:B of each source")
    parser.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="one JSON object per line, nothing else on stdout")
    add_backend_options(parser)
    parser.set_defaults(run=run)


def _batches(frames, size):
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _line(record, as_json):
    if as_json:
        finite = math.isfinite(record["score"])
        return json.dumps({**record, "score": record["score"] if finite else None})
    return f"{record['source']}\t{record['frame']}\t{record['score']:.6f}\t{record['threshold']:.6f}\t" \
           f"{'ANOMALOUS' if record['flag'] else 'ok'}"


def run(args):
    pipeline = Pipeline.load(args.model, args.detector, args.device, args.threshold, **backend_options(args))
    for spec in args.inputs:
        for batch in _batches(open_source(spec, parse_frames(args.frames)), args.batch_size):
            for frame, result in zip(batch, pipeline.process([f.image for f in batch])):
                record = dict(zip(FIELDS, (frame.source, frame.index, result.score, result.threshold,
                                           result.anomalous)))
                print(_line(record, args.json), file=sys.stdout, flush=True)
