# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Replaying a fixed-shape inference model faster on CUDA: CUDA Graph capture or ``torch.compile``.

ESPNet with the monitor is a few hundred small kernels per frame; on a GPU that runs each in
microseconds, launching them from Python costs a large part of the frame. A CUDA graph records the
launches once and replays them with one call. The network size is fixed, so each batch size is one
graph. ``compile`` chooses:

- ``auto``: ``cuda-graph`` on a CUDA device, ``off`` elsewhere;
- ``off``: the module as it is;
- ``cuda-graph``: :class:`GraphReplay` (CUDA only; capture takes a few warm-up forwards, no compiler);
- ``torch-compile``: ``torch.compile`` (inductor; the first frame of each shape compiles, which takes
  from seconds to minutes and needs a C++ compiler on a CPU, Triton on CUDA).
"""

import torch

from daain_ros.errors import DaainError

COMPILE_MODES = ("auto", "off", "cuda-graph", "torch-compile")
#: Batch shapes captured per model; further shapes run eagerly (each graph holds its own memory).
MAX_GRAPHS = 4
#: Forwards on a side stream before a capture, so lazy initialisation (cuDNN, the allocator) is not recorded.
WARMUP = 3
#: That side stream, one per device: cuBLAS keeps a workspace per stream for the whole process, so a fresh stream
#: per capture would leave one more behind at every configure/cleanup cycle.
_WARMUP_STREAMS = {}


def resolve_compile(mode, device):
    """The mode ``auto`` stands for on ``device``; raises ``DaainError`` for an unknown or impossible one."""
    if mode not in COMPILE_MODES:
        raise DaainError(f"compile {mode!r}: expected one of {', '.join(COMPILE_MODES)}")
    device = torch.device(device)
    if mode == "auto":
        return "cuda-graph" if device.type == "cuda" else "off"
    if mode == "cuda-graph" and device.type != "cuda":
        raise DaainError(f"compile 'cuda-graph' on device {device}: expected a CUDA device (or compile auto/off)")
    return mode


def accelerate(module, mode="auto", device="cpu"):
    """A callable computing ``module(x)`` for inference on ``device``, replayed or compiled as ``mode`` says.

    :param module: an ``nn.Module`` in eval mode whose input has a fixed shape per batch size; its outputs
        are a tensor or a tuple of tensors.
    """
    mode = resolve_compile(mode, device)
    if mode == "cuda-graph":
        return GraphReplay(module)
    if mode == "torch-compile":
        return torch.compile(module, dynamic=False)
    return module


class GraphReplay:
    """``module`` as one CUDA graph per input shape and dtype, captured at the first call with that shape.

    The outputs are copied out of the graph's static buffers, so a result stays valid after the next call;
    nothing in a call waits for the device. Inference only: calls run under ``torch.inference_mode``.
    """

    def __init__(self, module):
        self.module = module
        self._graphs = {}

    @torch.inference_mode()
    def __call__(self, x):
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in self._graphs:
            if len(self._graphs) >= MAX_GRAPHS:
                return self.module(x)
            self._graphs[key] = _capture(self.module, x)
        static_input, graph, static_output = self._graphs[key]
        static_input.copy_(x)
        graph.replay()
        return _clone(static_output)

    @property
    def shapes(self):
        """The input shapes captured so far."""
        return [key[0] for key in self._graphs]


def _capture(module, example):
    """(static input, graph, static output) of ``module`` recorded on ``example``'s shape."""
    static_input = example.clone()
    current = torch.cuda.current_stream(example.device)
    if example.device not in _WARMUP_STREAMS:
        _WARMUP_STREAMS[example.device] = torch.cuda.Stream(device=example.device)
    side = _WARMUP_STREAMS[example.device]
    side.wait_stream(current)
    with torch.cuda.stream(side):
        for _ in range(WARMUP):
            module(static_input)
    current.wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_output = module(static_input)
    return static_input, graph, static_output


def _clone(output):
    if isinstance(output, torch.Tensor):
        return output.clone()
    return type(output)(_clone(item) for item in output)
