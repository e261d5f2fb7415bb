"""``daain bag``: make, evaluate, play and record rosbag2 bags; one module per sub-command.

Each module in :data:`SUBCOMMANDS` has ``register(subparsers)`` that adds its sub-commands and sets
``run``, as the modules of ``daain_ros.cli`` do for ``daain`` itself.
"""

import importlib

SUBCOMMANDS = ("daain_ros.evaluation.bag_make", "daain_ros.evaluation.bag_replay", "daain_ros.ros.bag_live")


def register(sub):
    parser = sub.add_parser("bag", help="make, evaluate, play and record rosbag2 bags",
                            description="Make, evaluate, play and record rosbag2 bags.")
    bag_sub = parser.add_subparsers(dest="bag_command", required=True, metavar="BAG_COMMAND")
    for module in SUBCOMMANDS:
        importlib.import_module(module).register(bag_sub)
