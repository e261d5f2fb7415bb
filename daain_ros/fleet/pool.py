# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Work spread over Ray actors that each load their model once; a worker that dies is retried once.

Each actor runs one item at a time, so a slow item never holds others back. An actor is created with
``max_restarts=1`` and ``max_task_retries=1``: when its process dies (out of memory, a crash in native
code, a lost node), Ray restarts it, which loads the model again, and runs the item again; when it dies a
second time the item's :class:`Outcome` says so and a fresh actor takes the next items. An actor that has
been restarted is replaced after its item, so every item gets its one retry. An exception inside an item
that the worker does not turn into a result is that item's failure, never the run's.
"""

import os
from collections import deque
from dataclasses import dataclass

import ray

from daain_ros.errors import FleetError, one_line

RESTARTS = 1
START_TIMEOUT_S = 600.0


def _line(exc, limit=300):
    text = one_line(exc)
    return text[:limit] + ("..." if len(text) > limit else "")


class PoolWorker:
    """Base of the actor classes a :class:`WorkerPool` drives: ``ready()`` once, then ``run(item)``.

    A subclass sets ``self.error`` (a line, or None) in its constructor instead of raising, so a worker
    that cannot load its model says why, and implements :meth:`work`.
    """

    error = None

    def describe(self):
        """What the report says about this worker, beside its process id and node."""
        return {}

    def ready(self):
        """Called once after the constructor: the worker's process, node and any error of its set-up."""
        context = ray.get_runtime_context()
        return {"pid": os.getpid(), "node": context.get_node_id(), "error": self.error, **self.describe()}

    def run(self, item):
        """:meth:`work` on one item, and whether this actor was restarted after a death."""
        return self.work(item), ray.get_runtime_context().was_current_actor_reconstructed

    def work(self, item):
        """The result of one item (a subclass's job)."""
        raise NotImplementedError


@dataclass(frozen=True)
class WorkerSpec:
    """The actor class (a :class:`PoolWorker`), its constructor arguments and what each actor reserves."""

    cls: type
    args: tuple = ()
    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """One item's result, or why it failed; ``worker`` is the ``ready()`` record of the actor that ran it."""

    item: object
    value: object = None
    failure: str = None
    worker: dict = None
    restarted: bool = False


class WorkerPool:
    """Up to ``workers`` actors of ``spec``; :meth:`results` runs items on them, :meth:`close` ends them."""

    def __init__(self, spec, workers, start_timeout_s=START_TIMEOUT_S):
        if workers < 1:
            raise FleetError(f"{workers} workers: expected at least 1")
        self.spec, self.workers, self.start_timeout_s = spec, workers, start_timeout_s
        self._remote = ray.remote(spec.cls).options(num_cpus=spec.num_cpus, num_gpus=spec.num_gpus,
                                                    max_restarts=RESTARTS, max_task_retries=RESTARTS)
        self._starting, self._idle, self._running, self.started = {}, [], {}, []
        self._missing = 0
        for _ in range(workers):
            self._start()

    def _start(self):
        actor = self._remote.remote(*self.spec.args)
        self._starting[actor.ready.remote()] = actor

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Ends every actor of the pool (their processes go; the cluster stays)."""
        busy = (actor for _, actor, _ in self._running.values())
        for actor in [*self._starting.values(), *(actor for actor, _ in self._idle), *busy]:
            ray.kill(actor)
        self._starting.clear()
        self._idle.clear()
        self._running.clear()

    def _ready(self, ref):
        actor = self._starting.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise FleetError(f"a worker died while starting: {_line(exc)}") from exc
        if info.get("error"):
            ray.kill(actor)
            raise FleetError(f"a worker could not start: {info['error']}")
        self.started.append(info)
        self._idle.append((actor, info))

    def _finish(self, ref, item, actor, info):
        """The item's :class:`Outcome`; the actor goes back to work unless it died or was restarted."""
        try:
            value, restarted = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            self._replace(None)
            return Outcome(item, failure=f"its worker died twice: {_line(exc)}", worker=info)
        except ray.exceptions.RayTaskError as exc:
            self._idle.append((actor, info))
            cause = exc.cause if exc.cause is not None else exc
            return Outcome(item, failure=f"{type(cause).__name__}: {_line(cause)}", worker=info)
        if restarted:
            self._replace(actor)
        else:
            self._idle.append((actor, info))
        return Outcome(item, value, worker=info, restarted=restarted)

    def _replace(self, actor):
        """Ends ``actor`` (None: it died); a new one starts when there is work for it."""
        if actor is not None:
            ray.kill(actor)
        self._missing += 1

    def results(self, items):
        """Runs every item; yields their :class:`Outcome` as they finish (not in the items' order).

        :raises FleetError: when a worker cannot start, or none starts within ``start_timeout_s`` (the
            cluster lacks the CPUs or GPUs a worker asks for).
        """
        queue, running = deque(items), self._running
        while queue or running:
            while self._missing and queue:
                self._missing -= 1
                self._start()
            while self._idle and queue:
                actor, info = self._idle.pop()
                item = queue.popleft()
                running[actor.run.remote(item)] = (item, actor, info)
            waiting = [*self._starting, *running]
            done, _ = ray.wait(waiting, num_returns=1, timeout=None if running else self.start_timeout_s)
            if not done:
                raise FleetError(f"no worker started within {self.start_timeout_s:.0f} s: the cluster lacks the "
                                 f"{self.spec.num_cpus:g} CPUs and {self.spec.num_gpus:g} GPUs a worker asks for")
            if done[0] in self._starting:
                self._ready(done[0])
            else:
                yield self._finish(done[0], *running.pop(done[0]))
