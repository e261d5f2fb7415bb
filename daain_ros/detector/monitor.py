# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Forward hooks that gather a sampling key's activations without building the activation space.

The reference DAAIN upsamples every hooked map to the input size and concatenates them (2.7 GiB per
512x256 frame) before indexing. Here each hook does one ``index_select`` on its own output with indices
precomputed on the device, so the cost is a few thousand reads per frame.
"""

import torch
from torch import nn

from daain_ros.detector.sampling_key import LayerShape
from daain_ros.errors import DaainError


def leaf_layers(net):
    """Names of every leaf module (convs, BatchNorms, PReLUs, pools, transposed convs), as the reference."""
    return [name for name, module in net.named_modules() if name and not any(module.children())]


def probe_layers(model, size, layers=None, device="cpu"):
    """Output shapes of the chosen layers at network ``size`` = (width, height), in call order."""
    names = leaf_layers(model.net) if layers is None else list(layers)
    modules = dict(model.net.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise DaainError(f"unknown layers {unknown[:3]}: expected names from model.net.named_modules()")
    shapes, handles = {}, []

    def record(name):
        def hook(_module, _inputs, output):
            if name in shapes:
                raise DaainError(f"layer {name} runs twice per forward: its activations would be ambiguous")
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                shapes[name] = LayerShape(name, *output.shape[1:])
        return hook

    for name in names:
        handles.append(modules[name].register_forward_hook(record(name)))
    try:
        with torch.inference_mode():
            model.logits(torch.zeros(1, 3, size[1], size[0], device=device))
    finally:
        for handle in handles:
            handle.remove()
    return list(shapes.values())


class ActivationMonitor(nn.Module):
    """Hooks ``key``'s layers on ``model`` and returns (logits, sampled activations N x K) per forward."""

    def __init__(self, model, key):
        super().__init__()
        self.model = model
        self.key = key
        self._parts = {}
        self._handles = []
        modules = dict(model.net.named_modules())
        device = model.device
        self._order = []
        for i, gather in enumerate(key.layer_gathers()):
            self.register_buffer(f"index_{i}", torch.as_tensor(gather.flat_indices, device=device))
            self.register_buffer(f"nhwc_index_{i}", torch.as_tensor(gather.nhwc_indices, device=device))
            self._order.append(gather.name)
            self._handles.append(modules[gather.name].register_forward_hook(self._hook(gather.name, i)))

    def _hook(self, name, i):
        """Reads the layer's output through a view in its own memory layout.

        ESPNet runs channels-last on CPU when fed ``preprocess``'s tensors; reshaping that to NCHW would copy
        every map.
        """
        index, nhwc_index = f"index_{i}", f"nhwc_index_{i}"

        def hook(_module, _inputs, output):
            if output.is_contiguous():
                flat, positions = output.view(output.shape[0], -1), getattr(self, index)
            else:
                flat = output.permute(0, 2, 3, 1).reshape(output.shape[0], -1)
                positions = getattr(self, nhwc_index)
            self._parts[name] = flat.index_select(1, positions)
        return hook

    def forward(self, x):
        self._parts.clear()
        logits = self.model.logits(x)
        try:
            activations = torch.cat([self._parts[name] for name in self._order], 1)
        except KeyError as exc:
            raise DaainError(f"hooked layer {exc} did not run: the model does not match the key") from exc
        finally:
            self._parts.clear()
        return logits, activations

    def remove(self):
        """Detaches the hooks (the model then runs unobserved)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
