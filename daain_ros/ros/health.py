# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What the node says about each frame, or about missing frames: the flag, a diagnostic level and why.

ROS-free, so the fail-closed rules are plain functions: every verdict that could not judge a frame
(no input, an undecodable message, a processing error, a non-finite score, a node that is not active)
carries ``anomalous=True``, and a raised flag is never reported at a level below ERROR.
"""

import math
import time
from dataclasses import dataclass

# The levels of diagnostic_msgs/DiagnosticStatus.
OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = ("OK", "WARN", "ERROR", "STALE")


@dataclass(frozen=True)
class Verdict:
    """The published state after one frame (or one health check without frames).

    :param anomalous: the value of the anomaly flag: True means do not trust the segmentation.
    :param cause: a short key of the failure for throttled logging ("input", "score", ...), or None.
    """

    anomalous: bool
    level: int
    message: str
    score: float = math.nan
    threshold: float = math.nan
    cause: str = None


def frame_verdict(score, threshold, frame_anomalous, flag, warn_above=None, window=""):
    """The verdict for a judged frame, given its own verdict and the debounced ``flag``.

    :param warn_above: scores above it (but not above the threshold) are WARN; None disables that.
    :param window: how the debounce window stands, e.g. "2 of the last 3", for the messages.
    """
    if not math.isfinite(score):
        return Verdict(True, ERROR, f"non-finite score {score}: cannot judge the frame", score, threshold,
                       "score")
    if flag:
        why = "frame is anomalous" if frame_anomalous else "recent frames were anomalous"
        return Verdict(True, ERROR, f"{why} ({window} frames above the threshold)", score, threshold)
    if frame_anomalous:
        return Verdict(False, WARN, f"frame is anomalous; flag held by the debounce ({window})", score,
                       threshold)
    if warn_above is not None and score > warn_above:
        return Verdict(False, WARN, "score near the threshold", score, threshold)
    return Verdict(False, OK, "normal", score, threshold)


def failure(cause, reason):
    """The verdict for a frame that could not be judged: flag raised, level ERROR."""
    return Verdict(True, ERROR, reason, cause=cause)


def waiting(topic):
    """The state before the first frame: flag raised, level STALE."""
    return Verdict(True, STALE, f"no frame received yet on {topic}")


def not_judging(why):
    """The state while the node does not judge (unconfigured, inactive, shut down): flag raised, STALE."""
    return Verdict(True, STALE, f"not judging: {why}")


def stale(silent_s, topic):
    """The verdict when no frame has arrived for ``silent_s`` seconds: flag raised, level STALE."""
    return Verdict(True, STALE, f"no input on {topic} for {silent_s:.2f} s", cause="stale")


def late(verdict, latency_s, max_latency_s):
    """A judged frame's ``verdict`` when it came ``latency_s`` after the frame arrived, beyond ``max_latency_s``.

    The camera has moved on: a "normal" about an old frame must not stand for now, so the flag is raised, at ERROR.
    """
    return _overruled(verdict, f"verdict {latency_s:.2f} s after the frame arrived, beyond max_latency "
                      f"{max_latency_s:g} s: too old to stand for the camera now", "late")


def shared_flag(verdict, rivals, topic):
    """``verdict`` as published while other nodes (``rivals``, their names) publish on the flag's ``topic`` too.

    A subscriber cannot tell whose value it got, so the flag is raised, at ERROR, naming them.
    """
    if not rivals:
        return verdict
    return _overruled(verdict, f"{len(rivals)} other publisher(s) on {topic} ({', '.join(rivals)}): subscribers "
                      "cannot tell their flags from this node's (give each detector a namespace of its own)",
                      "shared flag")


def mixed_input(verdict, sources, topic):
    """``verdict`` as published while more than one publisher (``sources``, their nodes' names) sends frames.

    Frames of two sources on one ``topic`` (a bag replayed onto the live camera's topic, a second driver)
    interleave: the flag, its debounce and the segmentation then stand for no one camera, and one source's
    normal frames can hide the other's anomalous ones. So the flag is raised, at ERROR, naming them.
    """
    if len(sources) < 2:
        return verdict
    return _overruled(verdict, f"{len(sources)} publishers on {topic} ({', '.join(sources)}): frames from several "
                      "sources interleave, so the flag and the segmentation stand for no one camera (stop or "
                      "remap all but one)", "mixed input")


def _overruled(verdict, why, cause):
    """``verdict`` raised at ERROR for ``why``, keeping its own message, score and threshold."""
    return Verdict(True, ERROR, f"{why}; this node's verdict: {verdict.message}", verdict.score, verdict.threshold,
                   cause)


def format_stamp(sec, nanosec):
    return f"{sec}.{nanosec:09d}"


def key_values(verdict, stamp, latency_ms, processed, dropped, lost):
    """The diagnostic key-values of a verdict, as (key, text) pairs.

    ``dropped``: frames replaced in the node's slot by newer ones; ``lost``: frames that never reached the node
    (overwritten in the subscription's queue or lost in transport).
    """
    def number(value, fmt):
        return format(value, fmt) if value is not None and math.isfinite(value) else str(value)

    return [
        ("anomaly", str(verdict.anomalous).lower()),
        ("score", number(verdict.score, ".6g")),
        ("threshold", number(verdict.threshold, ".6g")),
        ("frame stamp", stamp or "none"),
        ("latency ms", number(latency_ms, ".1f")),
        ("frames processed", str(processed)),
        ("frames dropped", str(dropped)),
        ("frames lost", str(lost)),
    ]


class CauseThrottle:
    """Lets each failure cause through at once, then at most once per ``period`` s with a count.

    A flood of bad frames (1,000 malformed messages, a camera unplugged for an hour) gives a handful
    of log lines, yet a new kind of failure is reported the moment it first happens.
    """

    def __init__(self, period=10.0, clock=time.monotonic):
        self._period = period
        self._clock = clock
        self._seen = {}

    def filter(self, cause, message):  # noqa: A003 (a method: it shadows nothing where it is called)
        """The line to log for ``message``, or None while ``cause`` was let through < ``period`` s ago."""
        now = self._clock()
        last, suppressed = self._seen.get(cause, (None, 0))
        if last is not None and now - last < self._period:
            self._seen[cause] = (last, suppressed + 1)
            return None
        self._seen[cause] = (now, 0)
        return message + (f" ({suppressed} more since the last report)" if suppressed else "")
