# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain export``: the monitored network as one ONNX graph, for ONNX Runtime or a TensorRT engine (docs/deploy.md).

Prints the graph's metadata as one JSON line; the file holds the sampling key and is written with mode 0600.
"""

import json
from pathlib import Path

from daain_ros.deploy.export import export_monitor
from daain_ros.errors import DaainError
from daain_ros.segmentation.network_size import check_network_size


def register(sub):
    parser = sub.add_parser("export", help="export ESPNet and its detector as one ONNX graph (a secret: mode 0600)")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint the detector was fitted for")
    parser.add_argument("--detector", required=True, help="detector directory")
    parser.add_argument("--out", required=True, type=Path, help="ONNX file to write, e.g. monitor.onnx")
    parser.add_argument("--size", default=None, metavar="WxH",
                        help="network input size; must be the detector's fitted size (default: that size)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="fix the batch size at N (default: dynamic, as daain score and bag evaluate use it; "
                             "the node runs batch 1)")
    parser.set_defaults(run=run)


def _size(text):
    try:
        width, height = (int(value) for value in text.lower().split("x"))
    except ValueError:
        raise DaainError(f"--size {text!r}: expected WxH such as 512x256") from None
    return check_network_size(width, height)


def run(args):
    size = None if args.size is None else _size(args.size)
    metadata = export_monitor(args.model, args.detector, args.out, size, args.batch)
    print(json.dumps({"out": str(args.out), **metadata}))
