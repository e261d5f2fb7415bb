# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Rosbag2 bags of footage with labelled anomalies (``daain bag from-video`` and ``from-images``).

Frames become sensor_msgs/msg/Image on the options' ``topic`` (and with ``compressed`` also JPEG
sensor_msgs/msg/CompressedImage on ``TOPIC/compressed``), stamped ``EPOCH_NS + index / rate`` in header
and log time alike, so the same call always writes the same bag. Each segment ``KIND:START-END`` perturbs
source frames START (inclusive) to END (exclusive) with ``daain_ros.evaluation.anomalies.perturb``; the
segments go to ``labels.json`` inside the bag directory (see :mod:`daain_ros.io.labels`). Frames stream
from the source to the bag; only the frames of one injected segment are held in memory at a time.
"""

from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from tqdm import tqdm

from daain_ros.errors import DaainError
from daain_ros.io.labels import BagLabels, Segment, check_segments, write_labels
from daain_ros.io.rosbag import BagWriter
from daain_ros.io.sources import stamp_at
from daain_ros.segmentation.network_size import DEFAULT_SIZE

EPOCH_NS = 1_700_000_000 * 10**9
DEFAULT_TOPIC = "/camera/image_raw"


@dataclass(frozen=True)
class BagOptions:
    """How :func:`make_bag` writes a bag; the defaults are ``daain bag``'s.

    :param rate: frame rate in Hz of the stamps, or None for the source's.
    :param segments: :class:`~daain_ros.io.labels.Segment` of source frames to perturb (not overlapping).
    :param model: ESPNet checkpoint, needed only for attack kinds; ``size`` is its input (width, height).
    :param seed: a segment starting at source frame S is perturbed with seed ``seed + S``.
    """

    topic: str = DEFAULT_TOPIC
    rate: float = None
    segments: tuple = ()
    compressed: bool = False
    encoding: str = "rgb8"
    frame_id: str = "camera"
    storage: str = "mcap"
    model: str = None
    severity: int = 3
    eps: float = 4 / 255
    size: tuple = DEFAULT_SIZE
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        if self.rate is not None and not self.rate > 0:
            raise DaainError(f"--rate {self.rate}: expected a positive frame rate in Hz")

    @property
    def compressed_topic(self):
        return f"{self.topic.rstrip('/')}/compressed" if self.compressed else None


def _perturber(options, segments):
    """``perturb(segment, images) -> images``; checks the kinds and loads ESPNet only for attacks."""
    if not segments:
        return None
    from daain_ros.evaluation import anomalies
    from daain_ros.segmentation.network_size import check_network_size

    size = check_network_size(*options.size)
    attacks = sorted({s.kind for s in segments if anomalies.is_attack(s.kind)})
    model = None
    if attacks:
        if options.model is None:
            raise DaainError(f"--model is needed to inject the attack kinds {', '.join(attacks)}")
        from daain_ros.device import resolve_device
        from daain_ros.segmentation.espnet import load_espnet
        model = load_espnet(options.model, resolve_device(options.device))

    def perturb(segment, images):
        return anomalies.perturb(segment.kind, images, severity=options.severity, eps=options.eps, model=model,
                                 size=size, seed=options.seed + segment.start)

    return perturb


def _segments(options, source):
    first = source.frames.start or 0
    stop = None if source.total is None else first + source.total
    return check_segments(list(options.segments), first, stop)


def _write_frames(bag, source, segments, perturb, rate, options):
    """Writes the source's frames, perturbed inside the segments; returns the source indices written."""
    def segment_of(frame):
        return next((i for i, s in enumerate(segments) if s.start <= frame.index < s.end), None)

    written = []
    progress = tqdm(source, total=source.total, desc=f"bag {bag.path.name}", unit="frame")
    for number, group in groupby(progress, key=segment_of):
        if number is None:
            pairs = ((frame, frame.image) for frame in group)
        else:
            frames = list(group)
            pairs = zip(frames, perturb(segments[number], [f.image for f in frames]))
        for frame, image in pairs:
            stamp = EPOCH_NS + stamp_at(frame.index, rate)
            bag.add_image(options.topic, stamp, image, encoding=options.encoding, frame_id=options.frame_id)
            if options.compressed_topic:
                bag.add_compressed(options.compressed_topic, stamp, image, frame_id=options.frame_id)
            written.append(frame.index)
    return written


def _labels(source, written, segments, rate, options):
    perturbation = dict(severity=options.severity, eps=options.eps, seed=options.seed, size=list(options.size),
                        model=None if options.model is None else str(options.model))
    return BagLabels(
        topic=options.topic, compressed_topic=options.compressed_topic, rate_hz=rate, epoch_ns=EPOCH_NS,
        first_frame=written[0], frame_count=len(written), source=source.name,
        perturbation=perturbation if segments else None,
        segments=tuple(Segment(s.kind, s.start, s.end, EPOCH_NS + stamp_at(s.start, rate),
                               EPOCH_NS + stamp_at(s.end, rate)) for s in segments))


def make_bag(source, out, options=BagOptions()):
    """Writes the frames of ``source`` to a new bag ``out`` with its ``labels.json``; returns a summary.

    :param source: a :class:`~daain_ros.io.sources.FrameSource` (a video, a folder, any source spec).
    :param out: the bag directory to create; it must not exist.
    :returns: ``{"bag", "topic", "frames", "rate_hz", "segments"}``, what ``daain bag`` prints.
    """
    out = Path(out)
    rate = options.rate or source.rate
    segments = _segments(options, source)
    perturb = _perturber(options, segments)
    with BagWriter(out, options.storage) as bag:
        written = _write_frames(bag, source, segments, perturb, rate, options)
    write_labels(out, _labels(source, written, segments, rate, options))
    return {"bag": str(out), "topic": options.topic, "frames": len(written), "rate_hz": rate,
            "segments": [str(s) for s in segments]}
