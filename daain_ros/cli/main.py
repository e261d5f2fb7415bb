# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The ``daain`` command line: fit, score, evaluate, benchmark and replay the DAAIN monitor of ESPNet.

One sub-command per module of ``daain_ros.cli`` named in :data:`COMMANDS`.

Every error the core raises on bad input becomes one line on stderr and exit code 2, never a traceback.
"""

import argparse
import importlib
import logging
import sys

from daain_ros.errors import DaainError, one_line
from daain_ros.segmentation.subnormal import flush_denormals

COMMANDS = ("bag", "bench", "demo", "evaluate", "fit", "fleet", "perturb", "report", "score", "segment",
            "train_default")


def build_parser():
    parser = argparse.ArgumentParser(prog="daain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="daain: %(message)s")
    flush_denormals()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except DaainError as exc:
        print(f"daain {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
