"""A client worker: one logical client process that records every operation it attempts.

Jepsen's rule: after an `info` completion the process id is retired and the worker
goes on under a new id (old id + concurrency); its connection is dropped too, so a
late answer can never be taken for the next request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import FAIL, INFO, Client, Outcome
from faultbed.history import HistoryWriter
from faultbed.workloads import PlannedOp, worker_random

if TYPE_CHECKING:
    from faultbed.spec import TestSpec
    from faultbed.workloads import Workload

log = logging.getLogger(__name__)


@dataclass
class WorkerCounts:
    ok: int = 0
    fail: int = 0
    info: int = 0

    def add(self, type_: str) -> None:
        setattr(self, type_, getattr(self, type_) + 1)


class Worker:
    """Executes planned operations against one home node (or a chosen one) and records them."""

    def __init__(self, index: int, process: int, process_stride: int, cluster: RunningCluster,
                 history: HistoryWriter, node: str, op_timeout: float) -> None:
        self.index = index
        self.process = process
        self.process_stride = process_stride
        self.cluster = cluster
        self.history = history
        self.node = node
        self.op_timeout = op_timeout
        self.counts = WorkerCounts()
        self.crash: Exception | None = None   # what ended run_worker, when it was not the deadline
        self._clients: dict[str, Client] = {}

    def execute(self, op: PlannedOp, node: str | None = None) -> Outcome:
        """Invoke `op` on `node` (default: the home node), record invoke and completion."""
        target = node or self.node
        invocation = self.history.invoke(self.process, op.f, op.key, op.value, node=target, **op.extra)
        outcome = self._invoke(target, op)
        self.history.complete(invocation, outcome.type, outcome.value,
                              node=outcome.node or target, error=outcome.error)
        self.counts.add(outcome.type)
        if outcome.type == INFO:
            self.process += self.process_stride
            self._drop(target)
        return outcome

    def _invoke(self, node: str, op: PlannedOp) -> Outcome:
        client = self._clients.get(node)
        if client is None:
            try:
                client = self.cluster.client(node, timeout=self.op_timeout)
            except OSError as exc:
                return Outcome(FAIL, error=f"connect: {exc.strerror or exc}", node=node)
            self._clients[node] = client
        try:
            return client.invoke(op.f, op.key, op.value, self.op_timeout)
        except Exception as exc:  # a client bug must not kill the worker; the outcome is unknown
            log.exception("client raised on %s %s", node, op)
            self._drop(node)
            return Outcome(INFO, error=f"client error: {exc}", node=node)

    def _drop(self, node: str) -> None:
        client = self._clients.pop(node, None)
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def close(self) -> None:
        for node in list(self._clients):
            self._drop(node)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_worker(spec: "TestSpec", workload: "Workload", worker: Worker, stop: threading.Event,
               deadline: float) -> None:
    """Perform the worker's planned operations at its share of the rate until `deadline` or `stop`."""
    ops: Iterator[PlannedOp] = workload.operations(spec, worker.index)
    timing = worker_random(spec, worker.index, "timing")
    interval = spec.concurrency / spec.rate if spec.rate > 0 else 0.0
    next_at = time.monotonic() + timing.uniform(0, interval)
    try:
        while not stop.is_set():
            if interval:
                now = time.monotonic()
                if next_at > now and stop.wait(next_at - now):
                    break
                next_at = max(next_at, time.monotonic() - interval) + timing.uniform(0.5, 1.5) * interval
            if time.monotonic() >= deadline:
                break
            workload.perform(worker, next(ops))
    except Exception as exc:  # a bug (faultbed's or a workload plugin's): the run ends as an internal error
        worker.crash = exc
        stop.set()
