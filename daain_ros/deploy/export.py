# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The monitored network as one ONNX graph, bound to the files it was made from (``daain export``).

``torch.onnx.export`` (the ``torch.export``-based exporter, which needs ``onnxscript``) turns the one-graph
monitor (:func:`~daain_ros.detector.graph.monitored_network`) into ONNX. Input ``image``: N x 3 x H x W, the
network input ``preprocess`` makes, at the detector's fitted size. Outputs ``labels`` (N x H x W train ids,
uint8) and ``scores`` (N, float32, higher = more anomalous). The batch is dynamic unless fixed at export.

The sampling key is in the graph's Gather indices, so the file is as secret as the detector: it is created
with mode 0600, and its ``metadata_props`` bind it to the sha256 of the segmentation weights and of the
detector's files; :func:`check_binding` refuses it beside any others.
"""

import contextlib
import hashlib
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from daain_ros.deploy.rewrite import without_prelu
from daain_ros.detector.artifact import METADATA, TENSORS, load_detector, write_private
from daain_ros.detector.graph import monitored_network
from daain_ros.detector.monitor import to_input_size
from daain_ros.errors import DaainError, DetectorFileError
from daain_ros.segmentation.espnet import file_sha256, load_espnet

FORMAT = "daain_ros.monitor.onnx"
#: 2: the cauchy head returns +inf beyond its Gaussian limit (a version-1 graph scores there what rounding left).
FORMAT_VERSION = "2"
OPSET = 20
INPUT = "image"
OUTPUTS = ("labels", "scores")
DYNAMIC_EXAMPLE_BATCH = 2  # torch.export specialises a dimension whose example is 1


class Segmenter(nn.Module):
    """ESPNet alone with the monitor's first output: N x 3 x H x W -> train ids N x H x W (uint8)."""

    def __init__(self, model):
        super().__init__()
        self.net = model.net
        self.full = model.full

    def forward(self, x):
        logits = self.net(x)
        return (logits if self.full else to_input_size(logits, x)).argmax(1).to(torch.uint8)


#: Loggers of the exporter, which warn of absent torchvision operators and report each graph rewrite.
EXPORTER_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


@contextlib.contextmanager
def _quiet():
    """The exporter's warnings and rewrites (and deprecated pytree calls) are not the user's to act on."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def to_onnx(module, size, outputs, batch=None, device="cpu"):
    """Exports ``module`` for N x 3 x height x width inputs, N dynamic unless ``batch``: a checked ModelProto."""
    import onnx

    width, height = size
    example = torch.zeros(batch or DYNAMIC_EXAMPLE_BATCH, 3, height, width, device=device)
    dynamic = None if batch else ({0: torch.export.Dim("batch", min=1)},)
    with _quiet():
        program = torch.onnx.export(module.eval(), (example,), dynamo=True, input_names=[INPUT],
                                    output_names=list(outputs), dynamic_shapes=dynamic, opset_version=OPSET,
                                    verbose=False)
    proto = without_prelu(program.model_proto)
    onnx.checker.check_model(proto)
    return proto


def monitor_onnx(model, detector, batch=None):
    """The monitor's graph as ONNX (unbound: :func:`export_monitor` binds and writes it)."""
    return to_onnx(monitored_network(model, detector), detector.key.size, OUTPUTS, batch, model.device)


def espnet_onnx(model, size, batch=None):
    """The ONNX graph of ESPNet alone (``labels`` only): the floor the benchmark times the ONNX monitor against."""
    return to_onnx(Segmenter(model), size, OUTPUTS[:1], batch, model.device)


def detector_sha256(directory):
    """One digest of the detector's two files (tensors, then metadata): what an exported graph is bound to."""
    digest = hashlib.sha256()
    for name in (TENSORS, METADATA):
        digest.update(bytes.fromhex(file_sha256(Path(directory) / name)))
    return digest.hexdigest()


def binding(model, detector, detector_dir, batch=None):
    """The metadata an exported graph carries: format, the files it belongs to, its shapes, head and threshold."""
    width, height = detector.key.size
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "segmentation_sha256": model.sha256,
            "segmentation_name": model.name, "detector_sha256": detector_sha256(detector_dir),
            "input_size": f"{width}x{height}", "batch": str(batch or "dynamic"), "head": detector.head.kind,
            "threshold": repr(float(detector.threshold))}


def export_monitor(model_path, detector_path, out, size=None, batch=None):
    """Writes the monitor of ``model_path`` by ``detector_path`` as one bound ONNX graph to ``out`` (mode 0600).

    :param size: (width, height); must be the detector's fitted size (its key indexes that size only).
    :param batch: a fixed batch size; None leaves it dynamic.
    :returns: the metadata written into the graph (no secret in it).
    """
    if batch is not None and batch < 1:
        raise DaainError(f"batch {batch}: expected a positive number of frames, or none for a dynamic batch")
    model = load_espnet(model_path, "cpu")
    detector = load_detector(detector_path, model)
    if size is not None and tuple(size) != detector.key.size:
        raise DaainError(f"size {size[0]}x{size[1]}: the detector {detector_path} was fitted at "
                         f"{detector.key.size[0]}x{detector.key.size[1]} and its key indexes that size only")
    proto = monitor_onnx(model, detector, batch)
    props = binding(model, detector, detector_path, batch)
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_private(out, lambda path: path.write_bytes(proto.SerializeToString()))
    return props


def check_binding(props, source, model, detector_dir):
    """Refuses an exported graph that is not this format or was made for other weights or another detector."""
    if props.get("format") != FORMAT or props.get("format_version") != FORMAT_VERSION:
        raise DetectorFileError(f"{source}: format {props.get('format')!r} version {props.get('format_version')!r}, "
                                f"expected a daain export ({FORMAT!r} version {FORMAT_VERSION}): export it again")
    exported = props.get("segmentation_sha256", "")
    if exported != model.sha256:
        raise DetectorFileError(f"{source}: exported for segmentation weights {props.get('segmentation_name')} "
                                f"(sha256 {exported[:12]}...), got {model.name} (sha256 {model.sha256[:12]}...)")
    if props.get("detector_sha256") != detector_sha256(detector_dir):
        raise DetectorFileError(f"{source}: exported for another detector than {detector_dir} (the sha256 of "
                                "its files differs): export it again from these files")
