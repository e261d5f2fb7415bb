# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The parameters of ``detector_node``: declared when the node starts, read and checked at each configure.

A configure-time parameter may change only while the node is unconfigured (the next configure reads it);
``threshold``, the debounce and ``max_latency`` may change in any state. ``autostart`` is read once, at start-up.
"""

import math
from dataclasses import dataclass, fields

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile

from daain_ros.accelerate import COMPILE_MODES
from daain_ros.deploy import BACKEND_CHOICES
from daain_ros.errors import DaainError
from daain_ros.ros.debounce import KOfN
from daain_ros.ros.qos import RELIABILITY
from daain_ros.thresholds import check_threshold

#: One intra-op thread per core: with torch's threads waiting passively (the node sets OMP_WAIT_POLICY) and
#: ONNX Runtime's pool not spinning, a competing process slows the node down gracefully instead of stalling it
#: (measured per backend and thread count in docs/node.md, "Contention").
DEFAULT_THREADS = 0
#: Two frames in flight on a CPU: when the input outruns one, a frame's decoding, publishing and Python run
#: while the other's inference does (docs/node.md, "Workers").
DEFAULT_WORKERS = 0

# name -> (default, description)
PARAMETERS = {
    "autostart": (True, "configure and activate at start-up; false: wait for a lifecycle manager"),
    "model_path": ("", "ESPNet checkpoint (.pth or .safetensors) the detector was fitted for"),
    "detector_path": ("", "detector directory (detector.json + detector.safetensors)"),
    "device": ("auto", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N"),
    "backend": ("auto", "auto (onnxruntime on a CPU, torch on CUDA), torch (PyTorch, one graph) or onnxruntime "
                        "(ONNX Runtime's CPU execution provider)"),
    "onnx_path": ("", "for onnxruntime: a file of 'daain export' bound to model_path and detector_path; empty = "
                      "the graph is exported at configure (seconds)"),
    "threads": (DEFAULT_THREADS, "intra-op threads of the backend (torch's, or ONNX Runtime's pool, which does not "
                                 "spin), for each frame in flight; 0 = one per core"),
    "workers": (DEFAULT_WORKERS, "frames judged at once, each on a thread of its own, verdicts published in arrival "
                                 "order; 0 = 1 on CUDA, 2 on a CPU of 2 or more cores"),
    "compile": ("auto", "auto (cuda-graph on CUDA, off elsewhere), off, cuda-graph or torch-compile"),
    "width": (0, "network input width; 0 = the detector's fitted width, otherwise it must equal it"),
    "height": (0, "network input height; 0 = the detector's fitted height, otherwise it must equal it"),
    "image_reliability": ("best_effort", "QoS reliability of the image subscription: best_effort (sensor "
                                         "data) or reliable"),
    "image_transport": ("raw", "raw: sensor_msgs/Image on 'image'; compressed: sensor_msgs/CompressedImage "
                               "on 'image/compressed'"),
    "threshold": (-1.0, "anomaly threshold on the score; negative = the detector's calibrated one; not inf or nan"),
    "debounce_k": (1, "the flag is raised while at least k of the last n frames are anomalous"),
    "debounce_n": (1, "length n of the debounce window (k <= n)"),
    "stale_timeout": (0.5, "seconds without input before the node reports STALE and anomaly true (finite, > 0)"),
    "max_latency": (1.0, "seconds from a frame's arrival to its verdict beyond which the verdict raises the flag "
                         "(too old to stand for the camera now; finite, > 0)"),
    "publish_color": (False, "also publish daain/segmentation/color, an rgb8 palette overlay"),
}
READ_ONLY = frozenset({"autostart"})
RUN_TIME = frozenset({"threshold", "debounce_k", "debounce_n", "max_latency"})
CONFIGURE_TIME = frozenset(PARAMETERS) - READ_ONLY - RUN_TIME
TRANSPORTS = ("raw", "compressed")


def check_choice(name, value, choices):
    if value not in choices:
        raise DaainError(f"parameter {name}={value!r}: expected one of {', '.join(choices)}")
    return value


def check_seconds(name, value):
    """A duration parameter: finite and > 0."""
    if not 0 < value < math.inf:
        raise DaainError(f"parameter {name}={value}: expected a finite number of seconds > 0")
    return value


def check_run_time(value):
    """Checks the parameters that may change in any state (``RUN_TIME``), each read as ``value(name)``.

    At configure and on every change; raises ``DaainError``.
    """
    KOfN(value("debounce_k"), value("debounce_n"))
    check_seconds("max_latency", value("max_latency"))  # an infinite one would let any old verdict stand
    check_threshold(value("threshold"))  # an infinite one would flag nothing


@dataclass(frozen=True)
class Settings:
    """The parameters one configure works with; :meth:`read` refuses values the node cannot run with."""

    model_path: str
    detector_path: str
    device: str
    backend: str
    onnx_path: str
    threads: int
    workers: int
    compile: str  # noqa: A003 (the parameter's name; read as settings.compile, it shadows nothing)
    width: int
    height: int
    image_reliability: str
    image_transport: str
    threshold: float
    debounce_k: int
    debounce_n: int
    stale_timeout: float
    max_latency: float
    publish_color: bool

    @classmethod
    def read(cls, value):
        """The settings from ``value(name)``, the parameter's current value; raises ``DaainError``."""
        settings = cls(**{field.name: value(field.name) for field in fields(cls)})
        for name in ("model_path", "detector_path"):
            if not getattr(settings, name):
                raise DaainError(f"parameter {name} is empty: expected a path (see config/detector.yaml)")
        check_seconds("stale_timeout", settings.stale_timeout)  # an infinite one would never report a silent camera
        check_choice("image_transport", settings.image_transport, TRANSPORTS)
        check_choice("image_reliability", settings.image_reliability, RELIABILITY)
        check_choice("backend", settings.backend, BACKEND_CHOICES)
        check_choice("compile", settings.compile, COMPILE_MODES)
        for name in ("threads", "workers"):
            if getattr(settings, name) < 0:
                raise DaainError(f"parameter {name}={getattr(settings, name)}: expected 0 (the default) or more")
        check_run_time(value)
        return settings

    def debounce(self):
        return KOfN(self.debounce_k, self.debounce_n)

    def image_qos(self):
        """Sensor-data QoS (keep last 5, volatile) with the configured reliability."""
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=RELIABILITY[self.image_reliability],
                          durability=DurabilityPolicy.VOLATILE)


def refused_change(names, configured):
    """Why a change of the parameters ``names`` is refused now, or None when it is allowed."""
    fixed = sorted(set(names) & CONFIGURE_TIME) if configured else []
    if fixed:
        return (f"{', '.join(fixed)}: read at configure; change while unconfigured (deactivate and clean up, "
                "then configure again)")
    return None
