# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``detector_node``: a managed (lifecycle) node; camera frames in, segmentation and a fail-closed anomaly flag out.

configure loads and checks the model and detector, activate subscribes and starts judging, deactivate
stops judging and raises the flag, cleanup frees the model (CUDA memory included). With the ``autostart``
parameter (the default) the node configures and activates itself, on a thread of its own while the executor
keeps answering lifecycle and parameter services and publishing diagnostics. In every state but active the
latched flag says anomaly = true. States, topics, parameters and the fail-closed rules: docs/node.md and
``config/detector.yaml``.
"""

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

# torch's OpenMP threads read their wait policy once, when torch loads (below): a thread that spins while it
# waits for a sibling which a competing process has descheduled takes the core that sibling needs, and with
# threads >= 2 the frame rate collapses (docs/node.md, "Contention"). An explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import rclpy  # noqa: E402 (after the wait policy is set)
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult  # noqa: E402
from rclpy.clock import Clock, ClockType  # noqa: E402
from rclpy.exceptions import ParameterException  # noqa: E402
from rclpy.executors import ExternalShutdownException  # noqa: E402
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn  # noqa: E402
from rclpy.task import Future  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from daain_ros.errors import DaainError, one_line  # noqa: E402
from daain_ros.io.image_codec import decode_compressed_msg, decode_image_msg  # noqa: E402
from daain_ros.ros import health  # noqa: E402
from daain_ros.ros.dds import TEARDOWN_TIMEOUT_S, exit_if_stuck  # noqa: E402
from daain_ros.ros.fastdds import use_fastdds_profile  # noqa: E402
from daain_ros.ros.judging import FrameJudge  # noqa: E402
from daain_ros.ros.model import free_memory, given_threshold, load_pipeline, resolve_workers  # noqa: E402
from daain_ros.ros.outputs import VerdictPublisher  # noqa: E402
from daain_ros.ros.settings import PARAMETERS, READ_ONLY, Settings, check_run_time, refused_change  # noqa: E402
from daain_ros.segmentation.subnormal import flush_denormals  # noqa: E402
from daain_ros.thresholds import judging_threshold  # noqa: E402

NODE_NAME = "detector_node"
#: While not judging, the standing verdict is published again this often, for diagnostics that join late.
HEARTBEAT_S = 1.0
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
TRANSPORTS = {"raw": ("image", Image, decode_image_msg),
              "compressed": ("image/compressed", CompressedImage, decode_compressed_msg)}


class DetectorNode(LifecycleNode):
    """ESPNet segmentation with the DAAIN monitor on the newest camera frame while active; fails closed always.

    :param kwargs: passed to ``LifecycleNode`` (``context``, ``parameter_overrides``, ...).
    """

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description,
                                                                      read_only=name in READ_ONLY))
        self.finished = Future()  # done when the node is shut down (finalized)
        self._verdicts = VerdictPublisher(self)
        self._judge = self._sub = self._timer = None
        self._configuring = False
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._report(health.not_judging("unconfigured"))
        # The watchdog and the heartbeat (which also asserts the flag's liveliness) keep wall time: on ROS time
        # (use_sim_time, a bag replayed with --clock) they would stop with /clock, and the last verdict would
        # stand however long the camera is silent.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(HEARTBEAT_S, self._heartbeat, clock=self._steady)

    def _param(self, name):
        return self.get_parameter(name).value

    def autostart(self):
        """Configures and activates when the ``autostart`` parameter is true; False when that failed."""
        return not self._param("autostart") or (self.trigger_configure() == SUCCESS
                                                and self.trigger_activate() == SUCCESS)

    def start_up(self):
        """Runs :meth:`autostart` on a thread of its own; a Future of its result, for the executor to spin on.

        Configure can take tens of seconds (an ONNX export on a slow CPU); meanwhile the executor answers
        get_state ("configuring"), parameter services and the diagnostics heartbeat. A transition asked for
        over the lifecycle services while autostart runs is refused by the state machine.
        """
        started = Future()

        def run():
            try:
                started.set_result(self.autostart())
            except BaseException as exc:  # handed to the thread that spins
                started.set_exception(exc)
        threading.Thread(target=run, name="daain_autostart", daemon=True).start()
        return started

    def on_configure(self, state):
        self._configuring = True
        inference = None
        try:
            settings = Settings.read(self._param)
            workers = resolve_workers(settings)
            # Loading, warm-up and every frame run on these threads only (see FrameJudge: OpenMP teams).
            inference = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="daain_inference")
            pipeline = inference.submit(load_pipeline, settings, self.get_logger()).result()
        except BaseException as exc:
            if inference is not None:  # its thread would outlive the failed configure
                inference.shutdown(wait=False)
            if not isinstance(exc, DaainError):
                raise  # a bug: rclpy logs it and on_error raises the flag
            reason = f"cannot start: {one_line(exc)}"  # stays unconfigured; logged once and in the diagnostic
            self.get_logger().error(reason)
            self._report(health.failure(None, reason))
            return FAILURE
        finally:
            self._configuring = False
        topic, _, decode = TRANSPORTS[settings.image_transport]
        self._judge = FrameJudge(self, settings, pipeline, decode, self._verdicts, self.resolve_topic_name(topic),
                                 inference, workers)
        self._report(health.not_judging("inactive (configured, waiting for activate)"))
        return SUCCESS

    def on_activate(self, state):
        settings = self._judge.settings
        topic, msg_type, _ = TRANSPORTS[settings.image_transport]
        self._sub = self.create_subscription(msg_type, topic, self._judge.on_image, settings.image_qos())
        result = super().on_activate(state)  # enables the result publishers
        self._judge.start(self._sub.topic_name)
        self._timer = self.create_timer(min(1.0, settings.stale_timeout / 2), self._judge.check_health,
                                        clock=self._steady)
        self.get_logger().info(f"judging {self._sub.topic_name} at {self._judge.describe()}")
        return result

    def on_deactivate(self, state):
        self._stop_judging(health.not_judging("inactive (deactivated)"))
        self.get_logger().info(f"deactivated: {self._judge.topic} is not judged, anomaly = true")
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self._release()
        self._report(health.not_judging("unconfigured (cleaned up)"))
        return SUCCESS

    def on_shutdown(self, state):
        self._stop_judging(health.not_judging("shut down"))
        self._release()
        self.finished.set_result(state.label)
        return SUCCESS

    def on_error(self, state):
        """After a transition raised (rclpy keeps the exception): back to unconfigured, flag raised."""
        reason = f"unexpected error in a transition from {state.label}; now unconfigured"
        self.get_logger().error(reason)
        self._stop_judging(health.failure(None, reason))
        self._release()
        return SUCCESS

    def _stop_judging(self, verdict):
        """Publishes ``verdict`` (flag raised) before the subscription and the health timer go."""
        if self._judge is not None:
            self._standing = verdict
            self._judge.stop(verdict)
        else:
            self._report(verdict)
        if self._sub is not None:
            self.destroy_subscription(self._sub)
        if self._timer is not None:
            self.destroy_timer(self._timer)
        self._sub = self._timer = None

    def _release(self):
        """Ends the workers and frees the model, CUDA memory included."""
        if self._judge is None:
            return
        judge, self._judge = self._judge, None
        device = judge.pipeline.device
        if not judge.close():
            self.get_logger().warning("inference still running: the model is freed when it returns")
        del judge
        free_memory(device)

    def _heartbeat(self):
        self._verdicts.assert_alive()  # on this executor: a stuck executor lets the flag's liveliness lapse
        sub = self._sub  # read once: autostart's transitions run beside the heartbeat
        if sub is None:
            self._publish(self._standing)
        self._verdicts.check_graph(sub.topic_name if sub is not None else None)

    def _report(self, verdict):
        """Publishes a verdict while no frame is judged; the heartbeat repeats it."""
        self._standing = verdict
        self._publish(verdict)

    def _publish(self, verdict):
        """Reads ``_judge`` once: the heartbeat runs on the executor while autostart's transitions run."""
        judge = self._judge
        if judge is not None:
            judge.report(verdict)
        else:
            self._verdicts.publish(verdict, (None, None, 0, 0, 0), "")

    def _check_parameters(self, params):
        values = {p.name: p.value for p in params}
        reason = refused_change(values, configured=self._judge is not None or self._configuring)
        try:
            check_run_time(lambda name: values.get(name, self._param(name)))
            if "threshold" in values:  # a negative one needs a calibrated detector once one is loaded
                given = given_threshold(values["threshold"])
                if (judge := self._judge) is not None:
                    judging_threshold(judge.pipeline.detector, given)
        except DaainError as exc:
            reason = reason or str(exc)
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _apply_parameters(self, params):
        names, judge = {p.name for p in params}, self._judge
        changed = ", ".join(f"{p.name} {p.value}" for p in params)
        if judge is None:
            self.get_logger().warning(f"set while not configured: {changed}; read at the next configure")
            return
        if names & {"debounce_k", "debounce_n"}:
            judge.set_debounce(self._param("debounce_k"), self._param("debounce_n"))
        if "threshold" in names:
            judge.set_threshold(self._param("threshold"))
        if "max_latency" in names:
            judge.set_max_latency(self._param("max_latency"))
        self.get_logger().warning(f"set at run time: {changed}; now judging {judge.describe()}")

    def destroy_node(self):
        self._release()
        super().destroy_node()


def main(args=None):
    flush_denormals()
    use_fastdds_profile()
    rclpy.init(args=args)
    node = None
    try:
        node = DetectorNode()
        started = node.start_up()
        rclpy.spin_until_future_complete(node, started)
        if started.done() and not started.result():
            return 2  # configure logged why
        rclpy.spin_until_future_complete(node, node.finished)
    except ParameterException as exc:  # a parameter of the wrong type
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {one_line(exc)}")
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        with exit_if_stuck(TEARDOWN_TIMEOUT_S):  # the Fast DDS 3.2 teardown deadlock of daain_ros.ros.dds
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
