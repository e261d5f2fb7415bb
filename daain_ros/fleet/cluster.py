# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Ray for the length of a run: a new local cluster, the running one, or a remote one, and nothing left over.

``local`` starts a cluster of this machine's processes (on free ports, no dashboard) that ends with the
run; ``auto`` joins the cluster already running here (``ray start``, or ``RAY_ADDRESS``); ``ray://HOST:PORT``
connects through Ray Client to a remote head (needs ``grpcio``, pinned in requirements-python.txt). A process
that is already connected (``ray.init`` called by the caller, as the tests do) keeps its connection.
"""

import logging
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import ray

from daain_ros.errors import FleetError, one_line

LOCAL = "local"


@dataclass(frozen=True)
class Cluster:
    """What the run got: the address asked for, and the cluster's CPUs, GPUs and nodes when it started."""

    address: str
    cpus: float
    gpus: float
    nodes: int
    started_here: bool

    def worker_count(self, threads_per_worker, gpus_per_worker, requested=None):
        """``requested`` workers, or as many as the CPUs (or, with GPUs per worker, the GPUs) hold; at least one.

        :raises FleetError: when workers ask for GPUs the cluster does not have.
        """
        if gpus_per_worker > 0 and self.gpus < gpus_per_worker:
            raise FleetError(f"--gpus-per-worker {gpus_per_worker:g}: the cluster has {self.gpus:g} GPUs")
        if requested:
            return requested
        if gpus_per_worker > 0:
            return max(1, int(self.gpus // gpus_per_worker))
        return max(1, int(self.cpus // threads_per_worker))

    def to_dict(self):
        """What fleet.json records of the cluster."""
        return {"address": self.address, "cpus": self.cpus, "gpus": self.gpus, "nodes": self.nodes,
                "started_here": self.started_here}


def _described(address, started_here):
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return Cluster(address, float(resources.get("CPU", 0)), float(resources.get("GPU", 0)), nodes, started_here)


def _init(address, num_cpus):
    options = dict(log_to_driver=False, logging_level=logging.WARNING)
    if address == LOCAL:
        options.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        raise FleetError(f"--address {address}: cannot start or reach a Ray cluster "
                         f"({one_line(exc)[:300]})") from exc


@contextmanager
def connect(address=LOCAL, num_cpus=None):
    """Connected to Ray inside the block, disconnected (and a cluster started here stopped) after it.

    :param num_cpus: CPUs of a ``local`` cluster (default: this machine's); ignored when joining one.
    :returns: the :class:`Cluster`.
    """
    if ray.is_initialized():
        yield _described(address, started_here=False)
        return
    main_thread = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    _init(address, num_cpus)
    try:
        yield _described(address, started_here=address == LOCAL)
    finally:
        ray.shutdown()
        if main_thread:  # ray.init replaced it; a process that goes on after the run gets its own back
            signal.signal(signal.SIGTERM, sigterm)
