# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The per-frame path that the one-graph monitor replaced, kept to be timed and checked against it.

A Python forward hook on every sampled layer does one ``index_select`` on the layer's output; the
detector then runs eagerly on the concatenation. ``daain bench`` times it beside the graph
(:mod:`daain_ros.detector.graph`), and the tests check that both give the same labels and scores.
"""

import torch
from torch import nn

from daain_ros.detector.monitor import gather_samples
from daain_ros.errors import DaainError
from daain_ros.segmentation.preprocess import preprocess


class HookedMonitor(nn.Module):
    """Hooks ``key``'s layers on ``model`` and returns (logits, sampled activations N x K) per forward."""

    def __init__(self, model, key):
        super().__init__()
        self.model = model
        self._parts = {}
        self._handles = []
        self._order = []
        modules = dict(model.net.named_modules())
        for i, gather in enumerate(key.layer_gathers()):
            self.register_buffer(f"index_{i}", torch.as_tensor(gather.flat_indices, device=model.device))
            self.register_buffer(f"nhwc_index_{i}", torch.as_tensor(gather.nhwc_indices, device=model.device))
            self._order.append(gather.name)
            self._handles.append(modules[gather.name].register_forward_hook(self._hook(gather.name, i)))

    def _hook(self, name, i):
        index, nhwc_index = f"index_{i}", f"nhwc_index_{i}"

        def hook(_module, _inputs, output):
            self._parts[name] = gather_samples(output, getattr(self, index), getattr(self, nhwc_index))
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


class HookedStep:
    """The hook path on a batch of BGR frames: preprocessing, hooked ESPNet, argmax and the eager detector."""

    def __init__(self, model, detector):
        self.monitor = HookedMonitor(model, detector.key)
        self.detector = detector
        self.size = detector.key.size
        self.device = model.device

    def __call__(self, images):
        with torch.inference_mode():
            logits, activations = self.monitor(preprocess(images, self.size, self.device))
            return logits.argmax(1).byte(), self.detector(activations)

    def remove(self):
        self.monitor.remove()
