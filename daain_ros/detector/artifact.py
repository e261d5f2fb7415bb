# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The detector artifact: ``detector.safetensors`` (tensors) and ``detector.json`` (metadata), never pickle.

The JSON names the format version, the hooked layers and input size, the dimensions, threshold and
calibration figures, the training summary and the sha256 of the segmentation weights the detector was
fitted for; loading refuses a corrupt file, an unknown version or other weights. Both files are written
with mode 0600 because the key indices are the detector's secret.
"""

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from daain_ros.detector.daain import DaainDetector
from daain_ros.detector.flow import FlowConfig
from daain_ros.detector.sampling_key import LayerShape, SamplingKey
from daain_ros.errors import DetectorFileError

FORMAT = "daain_ros.detector"
FORMAT_VERSION = 1
TENSORS = "detector.safetensors"
METADATA = "detector.json"


def save_detector(detector, directory, model):
    """Writes the artifact for ``detector`` fitted on ``model`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = detector.key
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "segmentation": model.describe(),
        "input_size": list(key.size),
        "layers": [[layer.name, layer.channels, layer.height, layer.width] for layer in key.layers],
        "dims": key.dims,
        "radius": key.radius,
        "head": detector.head.kind,
        "flow": detector.flow_config.to_dict(),
        "threshold": float(detector.threshold),
        **detector.metadata,
    }
    tensors = {name: value.detach().cpu().contiguous() for name, value in detector.state_dict().items()}
    tensors["key.indices"] = torch.from_numpy(key.indices)
    write_private(directory / TENSORS, lambda path: save_file(tensors, str(path)))
    write_private(directory / METADATA, lambda path: path.write_text(json.dumps(meta, indent=2)))
    return directory


def write_private(path, write):
    """Creates the file with mode 0600 before any secret is written to it."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    write(path)
    os.chmod(path, 0o600)


def read_metadata(directory):
    """The artifact's JSON, checked for format and version."""
    path = Path(directory) / METADATA
    if not path.is_file():
        raise DetectorFileError(f"{path}: no such detector metadata file")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DetectorFileError(f"{path}: corrupt detector metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DetectorFileError(f"{path}: not a daain_ros detector (format {meta.get('format')!r})"
                                if isinstance(meta, dict) else f"{path}: not a daain_ros detector")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DetectorFileError(f"{path}: format version {meta.get('format_version')!r}, "
                                f"expected {FORMAT_VERSION}")
    return meta


def load_detector(directory, model):
    """Loads the artifact in ``directory`` for ``model``, on the model's device, in eval mode."""
    directory = Path(directory)
    meta = read_metadata(directory)
    segmentation = meta.get("segmentation")
    if not isinstance(segmentation, dict) or not isinstance(segmentation.get("sha256"), str):
        raise DetectorFileError(f"{directory / METADATA}: malformed detector metadata (expected "
                                "'segmentation' with the sha256 of the weights it was fitted for)")
    if segmentation["sha256"] != model.sha256:
        raise DetectorFileError(f"{directory}: fitted for segmentation weights {segmentation.get('name')} "
                                f"(sha256 {segmentation['sha256'][:12]}...), got {model.name} "
                                f"(sha256 {model.sha256[:12]}...)")
    try:
        tensors = load_file(str(directory / TENSORS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DetectorFileError(f"{directory / TENSORS}: cannot be read ({exc})") from exc
    try:
        layers = [LayerShape(name, *shape) for name, *shape in meta["layers"]]
        key = SamplingKey(tensors.pop("key.indices").numpy(), layers, meta["input_size"], meta["radius"])
        detector = DaainDetector(key, meta["head"], FlowConfig.from_dict(meta["flow"]), meta["threshold"],
                                 {k: meta[k] for k in ("fit", "training", "calibration", "coverage") if k in meta})
        detector.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DetectorFileError(f"{directory}: detector files malformed or do not match each other ({first})") from exc
    return detector.to(model.device).eval()
