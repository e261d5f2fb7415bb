"""``detector_node``: camera frames in; segmentation, a fail-closed anomaly flag, score and diagnostics out.

Subscription callbacks only drop the message into a one-frame slot; a worker thread decodes, runs
ESPNet with the DAAIN monitor and publishes, so the node always judges the newest frame and its memory
stays bounded. A timer reports STALE when the input stops. Topics, QoS, parameters and the fail-closed
rules are documented in docs/node.md and ``config/detector.yaml``.
"""

import sys
import threading
import time

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float32

from daain_ros.errors import DaainError, ImageError
from daain_ros.io.image_codec import decode_compressed_msg, decode_image_msg, encode_image
from daain_ros.pipeline import Pipeline
from daain_ros.ros import health
from daain_ros.ros.debounce import KOfN
from daain_ros.ros.fastdds import use_fastdds_profile
from daain_ros.ros.frame_slot import FrameSlot
from daain_ros.ros.qos import LATCHED, RELIABILITY
from daain_ros.segmentation.cityscapes import overlay
from daain_ros.segmentation.subnormal import flush_denormals

NODE_NAME = "detector_node"
#: Inference that has not returned after this long (or 10 stale timeouts) is reported as an ERROR.
OVERDUE_S = 5.0
#: Clean frames scoring above this quantile of the detector's clean validation scores are WARN.
WARN_QUANTILE = "0.9"

# name -> (default, read_only, description); a change of a read-only one needs a restart.
PARAMETERS = {
    "model_path": ("", True, "ESPNet checkpoint (.pth) the detector was fitted for"),
    "detector_path": ("", True, "detector directory (detector.json + detector.safetensors)"),
    "device": ("auto", True, "auto (CUDA when present, else CPU), cpu, cuda or cuda:N"),
    "width": (0, True, "network input width; 0 = the detector's fitted width, otherwise it must equal it"),
    "height": (0, True, "network input height; 0 = the detector's fitted height, otherwise it must equal it"),
    "image_reliability": ("best_effort", True, "QoS reliability of the image subscription: best_effort "
                                               "(sensor data) or reliable"),
    "image_transport": ("raw", True, "raw: sensor_msgs/Image on 'image'; compressed: "
                                     "sensor_msgs/CompressedImage on 'image/compressed'"),
    "threshold": (-1.0, False, "anomaly threshold on the score; negative = the detector's calibrated one"),
    "debounce_k": (1, False, "the flag is raised while at least k of the last n frames are anomalous"),
    "debounce_n": (1, False, "length n of the debounce window (k <= n)"),
    "stale_timeout": (0.5, True, "seconds without input before the node reports STALE and anomaly true"),
    "publish_color": (False, True, "also publish daain/segmentation/color, an rgb8 palette overlay"),
}
TRANSPORTS = {"raw": ("image", Image, decode_image_msg),
              "compressed": ("image/compressed", CompressedImage, decode_compressed_msg)}


def one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def check_choice(name, value, choices):
    if value not in choices:
        raise DaainError(f"parameter {name}={value!r}: expected one of {', '.join(choices)}")
    return value


def fitted_size(width, height, fitted, detector_path):
    """0 takes the detector's fitted size; any other value must equal it."""
    for name, value, own in (("width", width, fitted[0]), ("height", height, fitted[1])):
        if value not in (0, own):
            raise DaainError(f"{detector_path}: detector fitted at {fitted[0]}x{fitted[1]}, but parameter "
                             f"{name}={value} (expected 0 or {own})")
    return tuple(fitted)


def warn_level(pipeline):
    """The clean-score quantile above which a normal frame is WARN, from the detector's calibration."""
    quantiles = pipeline.detector.metadata.get("calibration", {}).get("score_quantiles", {})
    return quantiles.get(WARN_QUANTILE)


def image_qos(reliability):
    """Sensor-data QoS (keep last 5, volatile) with the configured reliability."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def image_msg(array, encoding, header):
    return Image(header=header, **encode_image(array, encoding))


def segmentation_msgs(labels, image_bgr, header, color):
    """The train-id image and, when ``color``, the palette overlay on the frame at network size."""
    msgs = [image_msg(labels, "mono8", header)]
    if color:
        small = cv2.resize(image_bgr, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_AREA)
        msgs.append(image_msg(overlay(small, labels)[..., ::-1], "rgb8", header))
    return msgs


def diagnostic_status(verdict, values, name, hardware_id):
    status = DiagnosticStatus(level=bytes([verdict.level]), name=name, message=verdict.message,
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=key, value=value) for key, value in values]
    return status


class DetectorNode(Node):
    """ESPNet segmentation with the DAAIN monitor on every (newest) camera frame, failing closed."""

    def __init__(self):
        super().__init__(NODE_NAME)
        for name, (default, read_only, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description,
                                                                      read_only=read_only))
        param = self._param
        self._stale_timeout = param("stale_timeout")
        if not self._stale_timeout > 0:
            raise DaainError(f"parameter stale_timeout={self._stale_timeout}: expected > 0 s")
        self._debounce = KOfN(param("debounce_k"), param("debounce_n"))
        topic, msg_type, self._decode = TRANSPORTS[check_choice("image_transport", param("image_transport"),
                                                                TRANSPORTS)]
        reliability = check_choice("image_reliability", param("image_reliability"), RELIABILITY)
        self._publish_color = param("publish_color")
        self._pipeline = self._load_pipeline()

        self._lock = threading.Lock()
        self._slot = FrameSlot()
        self._throttle = health.CauseThrottle()
        self._processed = 0
        self._last_arrival = time.monotonic()
        self._busy_since = None
        self._last_stamp = None

        self._seg_pub = self.create_publisher(Image, "daain/segmentation", 5)
        self._color_pub = (self.create_publisher(Image, "daain/segmentation/color", 5)
                           if self._publish_color else None)
        self._anomaly_pub = self.create_publisher(Bool, "daain/anomaly", LATCHED)
        self._score_pub = self.create_publisher(Float32, "daain/score", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._sub = self.create_subscription(msg_type, topic, self._on_image, image_qos(reliability))
        self._status_name = f"{self.get_fully_qualified_name()}: DAAIN anomaly detector"
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        with self._lock:
            self._publish(health.waiting(self._sub.topic_name))
        self._worker = threading.Thread(target=self._work, name="daain_inference", daemon=True)
        self._worker.start()
        self._timer = self.create_timer(min(1.0, self._stale_timeout / 2), self._check_health)
        width, height = self._pipeline.size
        self.get_logger().info(f"judging {self._sub.topic_name} at {width}x{height} on {self._pipeline.device}, "
                               f"threshold {self._pipeline.threshold:.6g}, debounce {self._debounce.k} of "
                               f"{self._debounce.n}")

    def _param(self, name):
        return self.get_parameter(name).value

    def _load_pipeline(self):
        """Loads model and detector, checks the network size, applies the threshold and warms up."""
        paths = {}
        for name in ("model_path", "detector_path"):
            paths[name] = self._param(name)
            if not paths[name]:
                raise DaainError(f"parameter {name} is empty: expected a path (see config/detector.yaml)")
        pipeline = Pipeline.load(paths["model_path"], paths["detector_path"], self._param("device"))
        if pipeline.model.subnormals_zeroed:
            self.get_logger().info(f"{pipeline.model.name}: {pipeline.model.subnormals_zeroed} subnormal "
                                   "weights set to zero (they slow CPU kernels down)")
        width, height = fitted_size(self._param("width"), self._param("height"), pipeline.size,
                                    paths["detector_path"])
        self._own_threshold = pipeline.threshold
        self._set_threshold(pipeline, self._param("threshold"))
        self._warn_above = warn_level(pipeline)
        pipeline.process([np.zeros((height, width, 3), np.uint8)])
        return pipeline

    def _set_threshold(self, pipeline, value):
        pipeline.threshold = value if value >= 0 else self._own_threshold

    def _check_parameters(self, params):
        values = {p.name: p.value for p in params}
        k = values.get("debounce_k", self._debounce.k)
        n = values.get("debounce_n", self._debounce.n)
        try:
            KOfN(k, n)
        except DaainError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params):
        names = {p.name for p in params}
        with self._lock:
            if names & {"debounce_k", "debounce_n"}:
                self._debounce = KOfN(self._param("debounce_k"), self._param("debounce_n"))
            if "threshold" in names:
                self._set_threshold(self._pipeline, self._param("threshold"))

    def _on_image(self, msg):
        self._last_arrival = time.monotonic()
        self._slot.put((msg, self._last_arrival))

    def _work(self):
        while (item := self._slot.take()) is not None:
            self._busy_since = time.monotonic()
            self._judge(*item)
            self._busy_since = None

    def _infer(self, msg):
        """The processing edge: (image, FrameResult, None), or (None, None, failure verdict)."""
        try:
            image = self._decode(msg)
            return image, self._pipeline.process([image])[0], None
        except ImageError as exc:
            return None, None, health.failure("input", f"cannot judge frame: {one_line(exc)}")
        except DaainError as exc:
            return None, None, health.failure("processing", f"processing failed: {one_line(exc)}")
        except Exception as exc:  # noqa: BLE001 (the one processing edge: torch/CUDA errors fail closed)
            return None, None, health.failure("processing", f"processing failed: {type(exc).__name__}: "
                                                            f"{one_line(exc)}")

    def _judge(self, msg, arrived):
        image, result, failed = self._infer(msg)
        with self._lock:
            self._processed += 1
            self._last_stamp = health.format_stamp(msg.header.stamp.sec, msg.header.stamp.nanosec)
            if failed is not None:
                self._debounce.update(True)
                self._publish(failed, msg.header, arrived)
                return
            self._publish_result(result, image, msg.header)
            self._publish(self._verdict(result), msg.header, arrived)

    def _verdict(self, result):
        flag = self._debounce.update(result.anomalous)
        window = f"{self._debounce.anomalous_in_window} of the last {self._debounce.n}"
        return health.frame_verdict(result.score, result.threshold, result.anomalous, flag, self._warn_above,
                                    window)

    def _publish_result(self, result, image, header):
        labels, *color = segmentation_msgs(result.labels, image, header, self._publish_color)
        self._seg_pub.publish(labels)
        for msg in color:
            self._color_pub.publish(msg)
        self._score_pub.publish(Float32(data=result.score))

    def _check_health(self):
        """Timer: STALE when the input stopped, ERROR when inference stopped returning."""
        now = time.monotonic()
        silent = now - self._last_arrival
        busy = self._busy_since
        with self._lock:
            if silent > self._stale_timeout:
                self._debounce.reset()
                self._publish(health.stale(silent, self._sub.topic_name))
            elif not self._worker.is_alive():
                self._publish(health.failure("processing", "inference worker stopped"))
            elif busy is not None and now - busy > max(OVERDUE_S, 10 * self._stale_timeout):
                self._publish(health.failure("processing", f"inference has not returned for {now - busy:.1f} s"))

    def _publish(self, verdict, header=None, arrived=None):
        """Publishes the flag and the diagnostic of ``verdict`` (call with the lock held)."""
        latency_ms = (time.monotonic() - arrived) * 1e3 if arrived is not None else None
        line = verdict.cause and self._throttle.filter(verdict.cause, verdict.message)
        if line and verdict.level == health.STALE:
            self.get_logger().warning(line)
        elif line:  # rclpy fixes a call site's severity, hence two calls
            self.get_logger().error(line)
        self._anomaly_pub.publish(Bool(data=verdict.anomalous))
        values = health.key_values(verdict, self._last_stamp, latency_ms, self._processed, self._slot.dropped)
        status = diagnostic_status(verdict, values, self._status_name, self._sub.topic_name)
        array = DiagnosticArray(status=[status])
        array.header.stamp = header.stamp if header is not None else self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def destroy_node(self):
        self._slot.close()
        if self._worker.is_alive():
            self._worker.join(timeout=OVERDUE_S)
        super().destroy_node()


def main(args=None):
    flush_denormals()
    use_fastdds_profile()
    rclpy.init(args=args)
    node = None
    try:
        node = DetectorNode()
        rclpy.spin(node)
    except (DaainError, ParameterException) as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {one_line(exc)}")
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
