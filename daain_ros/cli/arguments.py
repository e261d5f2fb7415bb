# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Argument types shared by the ``daain`` sub-commands (without torch: the fleet driver uses them too)."""

import argparse
from fractions import Fraction

from daain_ros.deploy import BACKEND_CHOICES


def fraction(text):
    """A number or a fraction such as ``4/255`` (attack budgets are written that way)."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{text!r} is not a number or fraction") from exc


def positive_int(text):
    """A count that must be at least 1 (frames, steps, epochs, workers, ...): argparse refuses 0 or less."""
    return _int_at_least(text, 1)


def non_negative_int(text):
    """A count that may be 0 (augmented copies, calibration folds, subscribers to wait for)."""
    return _int_at_least(text, 0)


def _int_at_least(text, least):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected an integer of at least {least}, got {value}")
    return value


def add_held_out_options(parser):
    """The detector, its checkpoint and the held-out clean frames (``daain evaluate``, ``daain defences``)."""
    parser.add_argument("--detector", required=True, help="detector directory")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint the detector was fitted for")
    parser.add_argument("--data", required=True, help="held-out clean source (frames by --frames)")
    parser.add_argument("--frames", default=None, help="frame range A:B of --data")
    parser.add_argument("--also", action="append", default=[], help="more held-out clean sources (whole)")


def source_images(spec, frames=None):
    """Every frame (BGR uint8) of the data source ``spec``, or of its range ``frames`` (``A:B``)."""
    from daain_ros.io.sources import open_source, parse_frames

    return [frame.image for frame in open_source(spec, parse_frames(frames))]


def held_out_images(args, every=1):
    """The held-out clean frames that :func:`add_held_out_options` parsed: every ``every``th of --data, then --also."""
    return source_images(args.data, args.frames)[::every] + [image for spec in args.also for image in
                                                             source_images(spec)]


def add_backend_options(parser):
    """``--backend``, ``--threads``, ``--onnx`` and ``--spin``: what the monitor runs on (docs/deploy.md).

    ``--compile`` applies to ``torch`` (:func:`daain_ros.accelerate.accelerate`).
    """
    from daain_ros.accelerate import COMPILE_MODES  # torch: this module serves the torch-free commands too

    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="torch",
                        help="torch: the one-graph monitor in PyTorch; onnxruntime: its ONNX export on the CPU; "
                             "auto: onnxruntime on a CPU, torch on CUDA (default %(default)s: no export at start)")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads of torch and ONNX Runtime (default: each library's own)")
    parser.add_argument("--onnx", default=None, metavar="FILE",
                        help="for onnxruntime: a file of 'daain export' for --model and --detector (default: "
                             "the graph is exported in memory at start, which takes seconds)")
    parser.add_argument("--spin", action="store_true",
                        help="let ONNX Runtime's idle threads spin (faster alone, slower beside other processes)")
    parser.add_argument("--compile", choices=COMPILE_MODES, default="auto",
                        help="for torch: auto (a CUDA graph on CUDA, nothing on a CPU), off, cuda-graph or "
                             "torch-compile (default %(default)s)")


def backend_options(args):
    """The keyword arguments of ``Pipeline.load`` that :func:`add_backend_options` parsed."""
    return dict(backend=args.backend, threads=args.threads, onnx=args.onnx, spin=args.spin, compile=args.compile)
