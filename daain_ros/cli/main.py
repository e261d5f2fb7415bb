# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The ``daain`` command line: fit, score, evaluate, benchmark and replay the DAAIN monitor of ESPNet.

One sub-command per module of ``daain_ros.cli`` named in :data:`COMMANDS`; a run imports only its own
command's module, so a command that never touches torch (the fleet driver, ``daain report``) starts without it.

Every error the core raises on bad input, and every usage error (a count of 0, an unknown option), becomes one
line on stderr and exit code 2, never a traceback.
"""

import argparse
import importlib
import logging
import sys

from daain_ros.errors import DaainError, one_line

COMMANDS = ("bag", "bench", "defences", "demo", "evaluate", "export", "fit", "fleet", "perturb", "report", "score",
            "segment", "train_default")


class _OneLineParser(argparse.ArgumentParser):
    """argparse's parser, with a usage error as one line (``daain COMMAND: error: ...``) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv=None):
    """The parser of every command, or only of the command ``argv`` names (what a run needs)."""
    parser = _OneLineParser(prog="daain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = [word for word in (argv or [])[:1] if word in COMMANDS]
    for name in named or COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def _flush_denormals(args):
    """Flush-to-zero before any torch work (subnormal weights slow CPU kernels 27x).

    A command that never runs torch in this process says so (``torch_free``) and starts without loading it.
    """
    if not getattr(args, "torch_free", False):
        from daain_ros.segmentation.subnormal import flush_denormals

        flush_denormals()


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="daain: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code
    _flush_denormals(args)
    try:
        return args.run(args) or 0
    except DaainError as exc:
        print(f"daain {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
