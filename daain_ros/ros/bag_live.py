"""``daain bag play`` and ``daain bag record``: a bag to DDS and back, to evaluate the live node.

Only the arguments live here: the rclpy parts (:mod:`daain_ros.ros.bag_play`, :mod:`daain_ros.ros.bag_record`)
are imported when one of the commands runs, so the CLI and the core load without ROS.
"""

from pathlib import Path

from daain_ros.io.rosbag import STORAGES

QOS_CHOICES = ("reliable", "best_effort")


def register(sub):
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
    play.add_argument("--wait-for-subscribers", type=int, nargs="?", const=1, default=0, metavar="N",
                      help="start only once every played topic has N subscribers (1 if N is left out)")
    play.add_argument("--delay", type=float, default=0.0, help="seconds to wait before the first message")
    play.set_defaults(run=_run_play)

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
    record.add_argument("--max-messages", type=int, default=None, help="stop after this many messages in all")
    record.set_defaults(run=_run_record)


def _run_play(args):
    from daain_ros.ros import bag_play
    return bag_play.run(args)


def _run_record(args):
    from daain_ros.ros import bag_record
    return bag_record.run(args)
