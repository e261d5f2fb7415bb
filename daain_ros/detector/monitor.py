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

import numpy as np
import torch
from torch import fx, nn

from daain_ros.detector.pointwise import channel_stages, chain_to_source
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
    """``model``'s ESPNet as a graph: x -> (logits at the input size, N x K sampled activations in key order).

    Each map is read once, with one ``index_select``: a BatchNorm's and a PReLU's samples are computed from
    those of their input (:mod:`daain_ros.detector.pointwise`), so a convolution, its BatchNorm and its PReLU
    are one read.
    """
    network = fx.GraphModule(model.net, GraphTracer().trace(model.net), "GatheredESPNet")
    graph = network.graph
    modules = dict(network.named_modules())
    calls, places, rank = {}, _gather_places(graph), {node: i for i, node in enumerate(graph.nodes)}
    for node in graph.find_nodes(op="call_module"):
        calls.setdefault(node.target, []).append(node)
    shapes = {layer.name: layer for layer in key.layers}
    reads, offset = {}, 0  # source node -> [(first position in key order, gather, stages, layer's node)]
    for gather in key.layer_gathers():
        node = _only_call(calls, gather.name)
        source, chain = chain_to_source(node, modules)
        stages = channel_stages(chain, shapes[gather.name].channels)
        reads.setdefault(source, []).append((offset, gather, stages, node))
        offset += len(gather.flat_indices)
    parts = []
    for i, (source, members) in enumerate(reads.items()):
        place = max((places[node] for *_, node in members), key=rank.__getitem__)
        flat = np.concatenate([gather.flat_indices for _, gather, _, _ in members])
        nhwc = np.concatenate([gather.nhwc_indices for _, gather, _, _ in members])
        parts.append(_insert_gather(network, source, place, flat, nhwc, i, model.device))
    output = graph.find_nodes(op="output")[0]
    with graph.inserting_before(output):
        logits = output.args[0]
        if not model.full:
            logits = graph.call_function(to_input_size, (logits, graph.find_nodes(op="placeholder")[0]))
        samples = graph.call_function(torch.cat, (parts, 1))
        samples = _in_key_order(network, samples, reads, model.device)
        samples = _apply_stages(network, samples, reads, shapes, model.device)
        output.args = ((logits, samples),)
    graph.lint()
    network.recompile()
    return network


def _only_call(calls, name):
    """The one node calling layer ``name``; a layer called more than once has ambiguous activations."""
    nodes = calls.get(name, [])
    if len(nodes) != 1:
        raise DaainError(f"layer {name} runs {len(nodes)} times per forward: expected once "
                         "(the model does not match the key)")
    return nodes[0]


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


def _insert_gather(network, source, place, flat, nhwc, i, device):
    """The node reading ``source``'s map at ``flat`` (``nhwc`` for a channels-last map), before ``place``."""
    network.register_buffer(f"index_{i}", torch.as_tensor(flat, device=device))
    network.register_buffer(f"nhwc_index_{i}", torch.as_tensor(nhwc, device=device))
    graph = network.graph
    with graph.inserting_before(place):
        return graph.call_function(gather_samples, (source, graph.get_attr(f"index_{i}"),
                                                    graph.get_attr(f"nhwc_index_{i}")))


def _in_key_order(network, samples, reads, device):
    """``samples``, read source by source, reordered into the key's order (no node when they already are)."""
    positions = np.concatenate([offset + np.arange(len(gather.flat_indices))
                                for members in reads.values() for offset, gather, _, _ in members])
    if np.array_equal(positions, np.arange(len(positions))):
        return samples
    network.register_buffer("key_order", torch.as_tensor(np.argsort(positions), device=device))
    graph = network.graph
    return graph.call_function(torch.index_select, (samples, 1, graph.get_attr("key_order")))


def _apply_stages(network, samples, reads, shapes, device):
    """``samples`` through each sampled BatchNorm and PReLU: per stage one ``addcmul`` and one ``prelu`` at most."""
    members = sorted((m for ms in reads.values() for m in ms), key=lambda member: member[0])
    depth = max((len(stages) for _, _, stages, _ in members), default=0)
    graph = network.graph
    for k in range(depth):
        columns = []
        for _, gather, stages, _ in members:
            layer = shapes[gather.name]
            channel = torch.as_tensor(gather.flat_indices // (layer.height * layer.width))
            identity = (torch.ones(layer.channels), torch.zeros(layer.channels), torch.ones(layer.channels))
            alpha, beta, slope = stages[k] if k < len(stages) else identity
            columns.append(torch.stack([alpha[channel], beta[channel], slope[channel]]))
        alpha, beta, slope = torch.cat(columns, 1).to(device)
        if not (torch.all(alpha == 1) and torch.all(beta == 0)):
            network.register_buffer(f"alpha_{k}", alpha)
            network.register_buffer(f"beta_{k}", beta)
            samples = graph.call_function(torch.addcmul, (graph.get_attr(f"beta_{k}"), samples,
                                                          graph.get_attr(f"alpha_{k}")))
        if not torch.all(slope == 1):
            network.register_buffer(f"slope_{k}", slope)
            samples = graph.call_function(nn.functional.prelu, (samples, graph.get_attr(f"slope_{k}")))
    return samples


class ActivationMonitor(nn.Module):
    """``key``'s activations of ``model``: (logits, sampled activations N x K) per forward, differentiable."""

    def __init__(self, model, key):
        super().__init__()
        self.model = model
        self.key = key
        self.network = gathered_network(model, key)

    def forward(self, x):
        return self.network(x)
