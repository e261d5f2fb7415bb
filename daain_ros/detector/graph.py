# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The monitored network as one ``torch.fx`` graph: image tensor in, (train ids, score) out.

ESPNet with the key's gathers (:func:`~daain_ros.detector.monitor.gathered_network`), their
concatenation, the standardisation, the flow's couplings and the head, traced into one ``GraphModule``:
no Python hook and none of FrEIA's per-block bookkeeping runs per frame, gradients flow through all of
it, and ``torch.onnx.export`` takes it whole (:mod:`daain_ros.deploy.export`). The head's kind, the
check that it was fitted and the flow's parameter-only terms (:class:`~daain_ros.detector.folded_flow.FoldedFlow`)
are settled once, when the graph is traced.
"""

import torch
from torch import fx, nn

from daain_ros.detector.folded_flow import FoldedFlow
from daain_ros.detector.monitor import GraphTracer, gathered_network


class _Monitored(nn.Module):
    """What gets traced: the gathered ESPNet, the argmax of its logits and the detector on its activations."""

    def __init__(self, network, detector):
        super().__init__()
        self.network = network
        self.flow = FoldedFlow(detector.flow, detector.standardizer)
        self.head = detector.head

    def forward(self, x):
        logits, activations = self.network(x)
        # The argmax first, while the logits just written are in the caches: after the flow the monitor was
        # slower in every interleaved run tried (one CPU thread, 512x256).
        labels = logits.argmax(1).to(torch.uint8)
        nll, z = self.flow(activations)
        return labels, self.head(nll, z)


def monitored_network(model, detector):
    """``model`` monitored by ``detector`` as one graph: network input -> (train ids, scores).

    The input is N x 3 x H x W, the train ids N x H x W uint8 and the scores N. The graph shares ``model``'s
    parameters and buffers and the detector's standardisation and head; the flow's it copies, folded (trace
    again after training the flow further). It runs in eval mode.
    """
    root = _Monitored(gathered_network(model, detector.key), detector).eval()
    return fx.GraphModule(root, GraphTracer().trace(root), "MonitoredNetwork").eval()
