# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Subnormal floats kept away from the CPU kernels.

Intel cores take a microcode assist per subnormal operand, which made the official p2q8 checkpoint (5 % of its weights
subnormal) run 27x slower.

Two measures: checkpoints lose their subnormal values when loaded (:func:`zero_subnormals`), and every
process entry point that runs torch sets flush-to-zero / denormals-are-zero (:func:`flush_denormals`), so
subnormal activations are flushed too. GPUs handle subnormals at full speed and are unaffected.
"""

import functools
import logging
import math

import torch

log = logging.getLogger(__name__)
_INT_OF_WIDTH = {8: torch.int8, 16: torch.int16, 32: torch.int32, 64: torch.int64}


def subnormal_mask(tensor):
    """True where a floating-point tensor holds a subnormal value: exponent bits zero, mantissa not.

    Read from the bits, because once denormals-are-zero is on, arithmetic sees subnormals as zero.
    """
    info = torch.finfo(tensor.dtype)
    mantissa = round(-math.log2(info.eps))
    bits = tensor.view(_INT_OF_WIDTH[info.bits])
    exponent = ((1 << (info.bits - 1 - mantissa)) - 1) << mantissa
    return ((bits & exponent) == 0) & ((bits & ((1 << mantissa) - 1)) != 0)


def zero_subnormals(state):
    """Sets every subnormal value of a state dict's floating-point tensors to zero, in place.

    :returns: how many values were zeroed.
    """
    count = 0
    for tensor in state.values():
        if tensor.is_floating_point():
            mask = subnormal_mask(tensor)
            count += int(mask.sum())
            tensor.masked_fill_(mask, 0)
    return count


@functools.cache
def flush_denormals():
    """Turns on flush-to-zero / denormals-are-zero for this process's CPU kernels; True when it could.

    Call it before torch starts its intra-op threads: they inherit the floating-point mode of the thread
    that creates them. Where the platform cannot (not x86 with SSE3), says so once.
    """
    supported = bool(torch.set_flush_denormal(True))
    if not supported:
        log.warning("this CPU cannot flush subnormal floats (torch.set_flush_denormal needs x86 with SSE3): "
                    "subnormal activations may slow inference down")
    return supported


def flushing():
    """Whether this thread's CPU arithmetic flushes subnormals now (half the smallest normal gives zero)."""
    return float(torch.full((1,), torch.finfo(torch.float32).tiny) * 0.5) == 0.0
