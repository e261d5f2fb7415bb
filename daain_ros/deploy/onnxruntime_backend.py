# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The ``onnxruntime`` backend: the exported monitor on ONNX Runtime's CPU execution provider.

The graph comes from a file of ``daain export`` (checked against the weights and detector given) or is
exported in memory at load, so no copy of the key reaches the disk. Sessions flush subnormal floats to
zero, as every torch entry point does (:mod:`daain_ros.segmentation.subnormal`), and run operators one
after another on ``threads`` intra-op threads whose spinning while idle is off unless asked for: a
spinning pool takes the cores that other processes of the vehicle computer need.
"""

from pathlib import Path

import onnxruntime
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from daain_ros.deploy.export import INPUT, OUTPUTS, check_binding, monitor_onnx
from daain_ros.errors import DetectorFileError

PROVIDERS = ("CPUExecutionProvider",)
_SESSION_ERRORS = (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.NoSuchFile, ort_errors.InvalidProtobuf,
                   ort_errors.InvalidGraph, ort_errors.NotImplemented)


def session_options(threads=None, spin=False):
    """Sequential execution on ``threads`` intra-op threads (None: ONNX Runtime's default), subnormals flushed.

    ``threads`` 1 runs every operator on the calling thread; more start a pool, whose idle threads spin only
    with ``spin``.
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # The default topological order runs the key's 127 gathers late, so every sampled map stays allocated
    # until then: on one thread of the 2-core CPU, 60 ms a 512x256 frame against 53 ms in priority order, which
    # reads each map soon after it is written (ESPNet alone: 51 ms either way).
    options.execution_order = onnxruntime.ExecutionOrder.PRIORITY_BASED
    # Fusions and constant folding, without the x86 NCHWc layout: each convolution whose output the key
    # samples would convert its whole map back for the gather (slower for ESPNet alone too, here).
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 3  # errors only: its warnings name internal graph rewrites
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return options


def open_session(source, threads=None, spin=False):
    """An inference session on ONNX bytes or a file; one that cannot be read raises ``DetectorFileError``."""
    try:
        return onnxruntime.InferenceSession(source, session_options(threads, spin), providers=list(PROVIDERS))
    except _SESSION_ERRORS as exc:
        name = source if isinstance(source, str) else "exported graph"
        raise DetectorFileError(f"{name}: ONNX Runtime cannot load it ({str(exc).strip()[:200]})") from exc


class OnnxRuntimeBackend:
    """The monitor's ONNX graph in an ONNX Runtime session: network input -> (train ids, scores) on the host."""

    name = "onnxruntime"

    def __init__(self, session):
        self.session = session

    @classmethod
    def load(cls, model, detector, detector_dir, threads=None, onnx=None, spin=False):
        """The session of ``onnx`` (a bound export of these files) or of a graph exported here and now."""
        if onnx is None:
            return cls(open_session(monitor_onnx(model, detector).SerializeToString(), threads, spin))
        if not Path(onnx).is_file():
            raise DetectorFileError(f"{onnx}: no such exported graph (write one with 'daain export')")
        backend = cls(open_session(str(onnx), threads, spin))
        check_binding(backend.metadata, onnx, model, detector_dir)
        return backend

    @property
    def metadata(self):
        """The graph's metadata_props (format, sha256 of the files it is bound to, size, batch, head, threshold)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x):
        labels, scores = self.session.run(list(OUTPUTS), {INPUT: x.contiguous().numpy()})
        return torch.from_numpy(labels), torch.from_numpy(scores)
