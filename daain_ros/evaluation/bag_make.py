"""``daain bag from-video`` and ``daain bag from-images``: rosbag2 bags of footage with labelled anomalies.

Frames become sensor_msgs/msg/Image on ``--topic`` (and with ``--compressed`` also JPEG
sensor_msgs/msg/CompressedImage on ``TOPIC/compressed``), stamped ``EPOCH_NS + index / rate`` in header
and log time alike, so the same command always writes the same bag. ``--inject KIND:START-END`` perturbs
source frames START (inclusive) to END (exclusive) with ``daain_ros.evaluation.anomalies.perturb``; the segments go
to ``labels.json`` inside the bag directory (see :mod:`daain_ros.io.labels`). Frames stream from the
source to the bag; only the frames of one injected segment are held in memory at a time.
"""

import json
from fractions import Fraction
from itertools import groupby
from pathlib import Path

from tqdm import tqdm

from daain_ros.io.labels import BagLabels, Segment, check_segments, parse_segment, write_labels
from daain_ros.io.rosbag import STORAGES, BagWriter
from daain_ros.errors import DaainError
from daain_ros.segmentation.preprocess import DEFAULT_SIZE
from daain_ros.io.sources import image_folder, parse_frames, stamp_at, video

EPOCH_NS = 1_700_000_000 * 10**9
DEFAULT_TOPIC = "/camera/image_raw"


def register(sub):
    video_parser = sub.add_parser("from-video", help="make a bag from a video file")
    video_parser.add_argument("source", metavar="VIDEO")
    images_parser = sub.add_parser("from-images", help="make a bag from a folder of images (natural order)")
    images_parser.add_argument("source", metavar="DIR")
    for parser, open_frames in ((video_parser, video), (images_parser, image_folder)):
        _add_options(parser)
        parser.set_defaults(run=run, open_frames=open_frames)


def _fraction(text):
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{text!r} is not a number or fraction") from exc


def _add_options(parser):
    parser.add_argument("out", type=Path, metavar="OUT_BAG", help="bag directory to create (must not exist)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help="image topic (default %(default)s)")
    parser.add_argument("--rate", type=float, default=None,
                        help="frame rate in Hz of the stamps (default: the video's, 10 for images)")
    parser.add_argument("--frames", default=None,
                        help="source frames A:B to write (half-open, A or B optional)")
    parser.add_argument("--inject", action="append", default=[], metavar="KIND:START-END",
                        help="perturb source frames START (inclusive) to END (exclusive) with anomaly KIND; "
                             "repeatable, segments must not overlap")
    parser.add_argument("--compressed", action="store_true",
                        help="also write JPEG CompressedImage on TOPIC/compressed")
    parser.add_argument("--encoding", choices=("rgb8", "bgr8"), default="rgb8")
    parser.add_argument("--frame-id", default="camera", help="header frame_id (default %(default)s)")
    parser.add_argument("--storage", choices=tuple(STORAGES), default="mcap")
    parser.add_argument("--model", default=None, help="ESPNet checkpoint (needed for attack kinds)")
    parser.add_argument("--severity", type=int, default=3, help="corruption severity 1-5 (default 3)")
    parser.add_argument("--eps", type=_fraction, default=4 / 255, help="attack L-inf budget (default 4/255)")
    parser.add_argument("--width", type=int, default=DEFAULT_SIZE[0], help="network width for attacks")
    parser.add_argument("--height", type=int, default=DEFAULT_SIZE[1], help="network height for attacks")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the anomalies: a segment starting at frame S uses SEED + S")
    parser.add_argument("--device", default="auto")


def _perturber(args, segments):
    """``perturb(segment, images) -> images``; checks the kinds and loads ESPNet only for attacks."""
    if not segments:
        return None
    from daain_ros.evaluation import anomalies
    from daain_ros.segmentation.preprocess import check_network_size

    size = check_network_size(args.width, args.height)
    attacks = sorted({s.kind for s in segments if anomalies.is_attack(s.kind)})
    model = None
    if attacks:
        if args.model is None:
            raise DaainError(f"--model is needed to inject the attack kinds {', '.join(attacks)}")
        from daain_ros.device import resolve_device
        from daain_ros.segmentation.espnet import load_espnet
        model = load_espnet(args.model, resolve_device(args.device))

    def perturb(segment, images):
        return anomalies.perturb(segment.kind, images, severity=args.severity, eps=args.eps, model=model,
                                 size=size, seed=args.seed + segment.start)

    return perturb


def _segments(args, source):
    first = source.frames.start or 0
    stop = None if source.total is None else first + source.total
    return check_segments([parse_segment(text) for text in args.inject], first, stop)


def run(args):
    if args.rate is not None and not args.rate > 0:
        raise DaainError(f"--rate {args.rate}: expected a positive frame rate in Hz")
    source = args.open_frames(args.source, parse_frames(args.frames))
    rate = args.rate or source.rate
    segments = _segments(args, source)
    perturb = _perturber(args, segments)
    compressed_topic = f"{args.topic.rstrip('/')}/compressed" if args.compressed else None

    def segment_of(frame):
        return next((i for i, s in enumerate(segments) if s.start <= frame.index < s.end), None)

    written = []
    with BagWriter(args.out, args.storage) as bag:
        progress = tqdm(source, total=source.total, desc=f"bag {args.out.name}", unit="frame")
        for number, group in groupby(progress, key=segment_of):
            if number is None:
                pairs = ((frame, frame.image) for frame in group)
            else:
                frames = list(group)
                pairs = zip(frames, perturb(segments[number], [f.image for f in frames]))
            for frame, image in pairs:
                stamp = EPOCH_NS + stamp_at(frame.index, rate)
                bag.add_image(args.topic, stamp, image, encoding=args.encoding, frame_id=args.frame_id)
                if compressed_topic:
                    bag.add_compressed(compressed_topic, stamp, image, frame_id=args.frame_id)
                written.append(frame.index)
    labels = BagLabels(
        topic=args.topic, compressed_topic=compressed_topic, rate_hz=rate, epoch_ns=EPOCH_NS,
        first_frame=written[0], frame_count=len(written), source=str(args.source),
        perturbation=dict(severity=args.severity, eps=args.eps, seed=args.seed,
                          size=[args.width, args.height], model=args.model) if segments else None,
        segments=tuple(Segment(s.kind, s.start, s.end, EPOCH_NS + stamp_at(s.start, rate),
                               EPOCH_NS + stamp_at(s.end, rate)) for s in segments))
    write_labels(args.out, labels)
    print(json.dumps({"bag": str(args.out), "topic": args.topic, "frames": len(written), "rate_hz": rate,
                      "segments": [str(s) for s in segments]}))
