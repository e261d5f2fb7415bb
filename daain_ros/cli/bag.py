# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain bag``: make, evaluate, play and record rosbag2 bags.

Only the arguments live here; each command calls one library function and prints its summary as one JSON
line: :func:`daain_ros.evaluation.bag_make.make_bag`, :func:`daain_ros.evaluation.bag_replay.evaluate_bag`,
:func:`daain_ros.ros.bag_play.play_bag` and :func:`daain_ros.ros.bag_record.record_bag`. Evaluation, play
and record are imported when their command runs, so the CLI loads without rclpy or torch.
"""

import json
from pathlib import Path

from daain_ros.cli.arguments import (add_backend_options, backend_options, fraction, non_negative_int,
                                     positive_int)
from daain_ros.evaluation.bag_make import BagOptions, make_bag
from daain_ros.io.labels import LABELS_FILE, parse_segment
from daain_ros.io.rosbag import STORAGES
from daain_ros.io.sources import image_folder, parse_frames, video

QOS_CHOICES = ("reliable", "best_effort")
#: The keys of the evaluation summary that ``daain bag evaluate`` prints.
EVALUATE_PRINTED = ("frames", "unreadable", "flagged_share", "out")


def register(sub):
    parser = sub.add_parser("bag", help="make, evaluate, play and record rosbag2 bags",
                            description="Make, evaluate, play and record rosbag2 bags.")
    bag_sub = parser.add_subparsers(dest="bag_command", required=True, metavar="BAG_COMMAND")
    for register_command in (_register_make, _register_evaluate, _register_play, _register_record):
        register_command(bag_sub)


def _register_make(sub):
    video_parser = sub.add_parser("from-video", help="make a bag from a video file")
    video_parser.add_argument("source", metavar="VIDEO")
    images_parser = sub.add_parser("from-images", help="make a bag from a folder of images (natural order)")
    images_parser.add_argument("source", metavar="DIR")
    for parser, open_frames in ((video_parser, video), (images_parser, image_folder)):
        _add_make_options(parser)
        parser.set_defaults(run=_run_make, open_frames=open_frames)


def _add_make_options(parser):
    defaults = BagOptions()
    parser.add_argument("out", type=Path, metavar="OUT_BAG", help="bag directory to create (must not exist)")
    parser.add_argument("--topic", default=defaults.topic, help="image topic (default %(default)s)")
    parser.add_argument("--rate", type=float, default=None,
                        help="frame rate in Hz of the stamps (default: the video's, 10 for images)")
    parser.add_argument("--frames", default=None,
                        help="source frames A:B to write (half-open, A or B optional)")
    parser.add_argument("--inject", action="append", default=[], metavar="KIND:START-END",
                        help="perturb source frames START (inclusive) to END (exclusive) with anomaly KIND; "
                             "repeatable, segments must not overlap")
    parser.add_argument("--compressed", action="store_true",
                        help="also write JPEG CompressedImage on TOPIC/compressed")
    parser.add_argument("--encoding", choices=("rgb8", "bgr8"), default=defaults.encoding)
    parser.add_argument("--frame-id", default=defaults.frame_id, help="header frame_id (default %(default)s)")
    parser.add_argument("--storage", choices=tuple(STORAGES), default=defaults.storage)
    parser.add_argument("--model", default=None, help="ESPNet checkpoint (needed for attack kinds)")
    parser.add_argument("--severity", type=int, default=defaults.severity,
                        help="corruption severity 1-5 (default 3)")
    parser.add_argument("--eps", type=fraction, default=defaults.eps,
                        help="attack L-inf budget (default 4/255)")
    parser.add_argument("--width", type=int, default=defaults.size[0], help="network width for attacks")
    parser.add_argument("--height", type=int, default=defaults.size[1], help="network height for attacks")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of the anomalies: a segment starting at frame S uses SEED + S")
    parser.add_argument("--device", default=defaults.device)


def _run_make(args):
    options = BagOptions(topic=args.topic, rate=args.rate, segments=tuple(map(parse_segment, args.inject)),
                         compressed=args.compressed, encoding=args.encoding, frame_id=args.frame_id,
                         storage=args.storage, model=args.model, severity=args.severity, eps=args.eps,
                         size=(args.width, args.height), seed=args.seed, device=args.device)
    source = args.open_frames(args.source, parse_frames(args.frames))
    print(json.dumps(make_bag(source, args.out, options)))


def _register_evaluate(sub):
    parser = sub.add_parser("evaluate", help="score a bag's image topic offline; CSV, report, plot and an "
                                             "output bag with the detector's topics")
    parser.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 directory, .mcap or .db3")
    parser.add_argument("--topic", default=None,
                        help="image topic (Image or CompressedImage; default: the labels' topic)")
    parser.add_argument("--detector", required=True, help="detector directory")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint the detector was fitted for")
    parser.add_argument("--out", type=Path, required=True, help="output directory (OUT/bag must not exist)")
    parser.add_argument("--labels", type=Path, default=None,
                        help=f"anomaly labels (default: BAG/{LABELS_FILE} when present)")
    parser.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    parser.add_argument("--debounce-k", type=int, default=1, help="flag while k of the last n frames are "
                                                                  "anomalous (default 1)")
    parser.add_argument("--debounce-n", type=int, default=1, help="debounce window n (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="frames per forward pass (default 8)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    add_backend_options(parser)
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from daain_ros.evaluation.bag_replay import UnreadableBagError, evaluate_bag

    try:
        summary = evaluate_bag(args.bag, detector=args.detector, model=args.model, out=args.out,
                               topic=args.topic, labels=args.labels, threshold=args.threshold,
                               debounce_k=args.debounce_k, debounce_n=args.debounce_n,
                               batch_size=args.batch_size, device=args.device, **backend_options(args))
    except UnreadableBagError as exc:  # the summary was written: say so before the error line
        print(json.dumps({key: exc.summary[key] for key in EVALUATE_PRINTED}))
        raise
    print(json.dumps({key: summary[key] for key in EVALUATE_PRINTED}))


def _register_play(sub):
    play = sub.add_parser("play", help="publish a bag's messages over DDS on their recorded timing",
                          description="Publish a bag's messages with rclpy on their recorded timing, like "
                                      "ros2 bag play (without a ROS install).")
    play.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 directory, .mcap or .db3")
    play.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    play.add_argument("--loop", action="store_true", help="play the bag again and again until stopped")
    play.add_argument("--topics", nargs="+", default=None, metavar="TOPIC",
                      help="play only these topics (default: all)")
    play.add_argument("--topic-remap", action="append", default=[], metavar="FROM:=TO",
                      help="publish topic FROM on TO; repeatable")
    play.add_argument("--qos", choices=QOS_CHOICES, default="reliable",
                      help="reliability of the publishers (default reliable)")
    play.add_argument("--wait-for-subscribers", type=non_negative_int, nargs="?", const=1, default=0, metavar="N",
                      help="start only once every played topic has N subscribers (1 if N is left out)")
    play.add_argument("--delay", type=float, default=0.0,
                      help="seconds to wait before the first message (time for DDS discovery, e.g. to see other "
                      "publishers on the played topics before it starts)")
    play.set_defaults(run=_run_play)


def _run_play(args):
    from daain_ros.ros.bag_play import parse_remaps, play_bag

    print(json.dumps(play_bag(args.bag, rate=args.rate, loop=args.loop, topics=args.topics,
                              remaps=parse_remaps(args.topic_remap), qos=args.qos,
                              wait_for_subscribers=args.wait_for_subscribers, delay=args.delay)))


def _register_record(sub):
    record = sub.add_parser("record", help="record live topics (the node's outputs) to a bag",
                            description="Record topics with rclpy to a rosbag2 bag, like ros2 bag record; "
                                        "stops on SIGINT/SIGTERM, --duration or --max-messages.")
    record.add_argument("out", type=Path, metavar="OUT_BAG", help="bag directory to create (must not exist)")
    record.add_argument("--topics", nargs="+", required=True, metavar="TOPIC", help="topics to record")
    record.add_argument("--storage", choices=tuple(STORAGES), default="mcap")
    record.add_argument("--qos", choices=("auto",) + QOS_CHOICES, default="auto",
                        help="subscription reliability; auto (default) matches the publishers as rosbag2 "
                             "does: reliable (and transient local) when all of them offer it, else best effort")
    record.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    record.add_argument("--max-messages", type=positive_int, default=None, help="stop after this many messages in all")
    record.set_defaults(run=_run_record)


def _run_record(args):
    from daain_ros.ros.bag_record import record_bag

    print(json.dumps(record_bag(args.out, args.topics, storage=args.storage, qos=args.qos,
                                duration=args.duration, max_messages=args.max_messages)))
