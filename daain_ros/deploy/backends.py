# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The backends a pipeline runs the monitor on, chosen by name, behind one interface.

Each is a callable on the network input that returns (train ids N x H x W uint8, scores N).

``torch`` runs the one-graph monitor (:mod:`daain_ros.detector.graph`) in PyTorch on the model's device;
``onnxruntime`` (:mod:`daain_ros.deploy.onnxruntime_backend`) runs its ONNX export on the CPU.
"""

import torch

from daain_ros.accelerate import accelerate
from daain_ros.deploy import BACKEND_CHOICES
from daain_ros.detector.graph import monitored_network
from daain_ros.errors import DaainError


def check_backend(name, threads=None):
    """The backend name and thread count as given, or a typed error naming what is expected."""
    if name not in BACKEND_CHOICES:
        raise DaainError(f"backend {name!r}: expected one of {', '.join(BACKEND_CHOICES)}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise DaainError(f"threads {threads!r}: expected a positive integer, or none for the library's default")
    return name


class TorchBackend:
    """The one-graph monitor in PyTorch, under ``inference_mode``."""

    name = "torch"

    def __init__(self, model, detector, compile="auto"):  # noqa: A002 (the option's name)
        self.graph = accelerate(monitored_network(model, detector), compile, model.device)

    def __call__(self, x):
        with torch.inference_mode():
            return self.graph(x)


def resolve_backend(name, device):
    """``name`` with ``auto`` resolved for ``device`` (a ``torch.device``): ``onnxruntime`` on a CPU, else ``torch``."""
    if name != "auto":
        return name
    return "onnxruntime" if device.type == "cpu" else "torch"


def load_backend(name, model, detector, detector_dir, threads=None, onnx=None, spin=False,
                 compile="auto"):  # noqa: A002 (the option's name)
    """Backend ``name`` for ``model`` monitored by ``detector`` (loaded from ``detector_dir``).

    :param threads: torch's intra-op threads (process-wide; preprocessing uses them with either backend)
        and ONNX Runtime's; None keeps each library's default.
    :param onnx: a file of ``daain export`` for ``onnxruntime``; None exports the graph in memory.
    :param spin: let ONNX Runtime's idle threads spin.
    :param compile: for ``torch``, CUDA Graph capture or ``torch.compile`` (:func:`daain_ros.accelerate.accelerate`).
    """
    check_backend(name, threads)
    if threads is not None:
        torch.set_num_threads(threads)
    if name == "torch":
        if onnx is not None:
            raise DaainError(f"exported graph {onnx} given with backend torch: expected backend onnxruntime")
        return TorchBackend(model, detector, compile)
    if compile not in ("auto", "off"):
        raise DaainError(f"compile {compile!r} with backend onnxruntime: expected auto or off (ONNX Runtime "
                         "optimises its own graph)")
    if model.device.type != "cpu":
        raise DaainError(f"backend onnxruntime on device {model.device}: expected cpu (its CPU execution "
                         "provider; on a GPU use backend torch, or build a TensorRT engine from 'daain export')")
    from daain_ros.deploy.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend.load(model, detector, detector_dir, threads, onnx, spin)
