# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""An unconfigured detector_node whose executor stops on SIGUSR1: a stuck node whose process and DDS writer live on.

``python stuck_node.py NAMESPACE``; SIGINT ends it. test_node_liveliness.py watches its flag from another process,
as a safety monitor would: with the node and the watching subscriber in one process (Fast DDS delivers between them
by its intra-process path), 1 of 12 runs under load got no liveliness event at all.
"""

import signal
import sys
import threading

import rclpy
from node_harness import in_process_node
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


def main(namespace):
    context = Context()
    node = in_process_node(context, namespace=namespace, device="cpu")
    executor = SingleThreadedExecutor(context=context)
    stuck = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: stuck.set())
    try:
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        stuck.wait()
        executor.shutdown(timeout_sec=5)  # the node and its DDS writer remain; nothing asserts liveliness
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


if __name__ == "__main__":
    main(sys.argv[1])
