# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The key's gathers as nodes of ESPNet's traced graph, without building the activation space.

The reference DAAIN upsamples every hooked map to the input size and concatenates them (2.7 GiB per
512x256 frame) before indexing. Here ESPNet is traced once with ``torch.fx`` and one ``index_select`` on
each sampled layer's output is inserted after that layer, with indices precomputed on the device: a few
thousand reads per frame, no Python hook per layer, and a graph that autograd, ONNX export and the
detector's own graph (:mod:`daain_ros.detector.graph`) take as it is.
"""

import torch
from torch import fx, nn

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


def gather_samples(output, flat_index, nhwc_index):
    """One layer's sampled values (N x k), read through a view in the layer's own memory layout.

    ESPNet runs channels-last on CPU when fed ``preprocess``'s tensors; reshaping that to NCHW would copy
    every map.
    """
    if output.is_contiguous():
        return output.view(output.shape[0], -1).index_select(1, flat_index)
    return output.permute(0, 2, 3, 1).reshape(output.shape[0], -1).index_select(1, nhwc_index)


def to_input_size(logits, x):
    """ESPNet-C's 1/8 logits upsampled bilinearly to the input size, as ``SegmentationModel.logits`` does."""
    return nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class GraphTracer(fx.Tracer):
    """``torch.fx``'s tracer with the layout test of :func:`gather_samples` kept as one call, not traced into."""

    def __init__(self):
        super().__init__(autowrap_functions=(gather_samples, to_input_size))


def gathered_network(model, key):
    """``model``'s ESPNet as a graph: x -> (logits at the input size, N x K sampled activations in key order)."""
    network = fx.GraphModule(model.net, GraphTracer().trace(model.net), "GatheredESPNet")
    graph = network.graph
    calls, places = {}, _gather_places(graph)
    for node in graph.find_nodes(op="call_module"):
        calls.setdefault(node.target, []).append(node)
    parts = [_insert_gather(network, calls.get(gather.name, []), places, gather, i, model.device)
             for i, gather in enumerate(key.layer_gathers())]
    output = graph.find_nodes(op="output")[0]
    with graph.inserting_before(output):
        logits = output.args[0]
        if not model.full:
            logits = graph.call_function(to_input_size, (logits, graph.find_nodes(op="placeholder")[0]))
        output.args = ((logits, graph.call_function(torch.cat, (parts, 1))),)
    graph.lint()
    network.recompile()
    return network


def _gather_places(graph):
    """Where each layer's gather goes: before the first function, method or output that follows the layer.

    A run of layers (convolution, BatchNorm, PReLU) is gathered together after its last one. The first
    operator after a convolution costs far more than the next ones (about 25 against 4 us on one CPU
    thread: caches the convolution evicted), so one gather point per run is 1-2 % of ESPNet's time less
    than one per layer, while no map lives much longer. (No ESPNet layer writes its input in place, so a
    map read later is still the layer's output.)
    """
    places, waiting = {}, []
    for node in graph.nodes:
        if node.op == "call_module":
            waiting.append(node)
        elif node.op in ("call_function", "call_method", "output"):
            places.update((layer, node) for layer in waiting)
            waiting = []
    return places


def _insert_gather(network, calls, places, gather, i, device):
    """The node reading ``gather``'s samples after its layer's only call, at that layer's place."""
    if len(calls) != 1:
        raise DaainError(f"layer {gather.name} runs {len(calls)} times per forward: expected once "
                         "(the model does not match the key)")
    network.register_buffer(f"index_{i}", torch.as_tensor(gather.flat_indices, device=device))
    network.register_buffer(f"nhwc_index_{i}", torch.as_tensor(gather.nhwc_indices, device=device))
    graph = network.graph
    with graph.inserting_before(places[calls[0]]):
        return graph.call_function(gather_samples, (calls[0], graph.get_attr(f"index_{i}"),
                                                    graph.get_attr(f"nhwc_index_{i}")))


class ActivationMonitor(nn.Module):
    """``key``'s activations of ``model``: (logits, sampled activations N x K) per forward, differentiable."""

    def __init__(self, model, key):
        super().__init__()
        self.model = model
        self.key = key
        self.network = gathered_network(model, key)

    def forward(self, x):
        return self.network(x)
