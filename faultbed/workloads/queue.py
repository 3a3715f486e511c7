"""The `queue` workload: producers publish, consumers consume and ack, nothing lost or doubled.

There is one queue per key (`q0`..). Even-numbered workers are producers, odd ones
consumers (a single worker only produces; the drain consumes). A publish carries a
message id unique to the run (`<worker>-<seq>`) and is retried on timeout or error
with backoff, each retry on the next node; a consume that leases a message is
followed by its ack on the same node. Producers never wait behind a consume, so a
node that acknowledges publishes it should not sees a producer's full rate. After the heal every queue is
drained (consume + ack until a `depth` read finds nothing ready or leased), and
checkers/queue.py judges the history as Jepsen's total-queue does.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Callable, Iterator

from faultbed.cluster.systems import OK, Outcome
from faultbed.spec import TestSpec
from faultbed.retry import execute_with_retries
from faultbed.worker import Worker
from faultbed.workloads import PlannedOp, worker_random

DRAIN_SECONDS = 60.0          # at least: how long the drain waits without consuming anything
DRAIN_MAX_SECONDS = 240.0     # the drain of all queues together, however much it still consumes
LEASE_WAIT = 0.25             # seconds between depth reads while messages are still leased
BODY_RANGE = 1_000_000

log = logging.getLogger(__name__)


def queue_name(index: int) -> str:
    return f"q{index}"


def is_producer(worker: int) -> bool:
    return worker % 2 == 0


def ack_op(queue: str, delivery: dict[str, Any], **extra: Any) -> PlannedOp:
    msg_id = delivery["msg_id"]
    return PlannedOp("ack", queue, {"msg_id": msg_id, "lease": delivery.get("lease")}, {"msg_id": msg_id, **extra})


def consume_and_ack(worker: Worker, op: PlannedOp, node: str | None = None) -> Outcome:
    """Consume from `op.key`; when a message is leased, ack it on the same node. The consume's outcome."""
    outcome = worker.execute(op, node=node)
    if outcome.type == OK and isinstance(outcome.value, dict) and outcome.value.get("msg_id") is not None:
        worker.execute(ack_op(op.key, outcome.value, **op.extra), node=node)
    return outcome


def drain_queue(worker: Worker, queue: str, nodes: list[str], patience: float, deadline: float) -> bool:
    """Consume and ack until a final depth read finds `queue` empty; False when `patience` seconds
    pass without a message consumed, or the hard `deadline` comes (a slow machine drains slowly,
    a stuck queue is given up on)."""
    attempt = 0
    give_up = min(deadline, time.monotonic() + patience)
    while time.monotonic() < give_up:
        node = nodes[attempt % len(nodes)]
        outcome = consume_and_ack(worker, PlannedOp("consume", queue, None, {"final": True}), node)
        if outcome.type != OK:
            attempt += 1  # this node cannot serve now: try the next one
            time.sleep(min(0.5, 0.05 * attempt))
            continue
        if outcome.value is not None:
            give_up = min(deadline, time.monotonic() + patience)  # progress: patience starts again
            continue
        depth = worker.execute(PlannedOp("depth", queue, None, {"final": True}), node=node)
        if depth.type == OK and depth.value == {"ready": 0, "leased": 0}:
            return True
        time.sleep(LEASE_WAIT)  # leased messages come back when their leases expire
    return False


class QueueWorkload:
    name = "queue"
    description = "producers and consumers with retries, a final drain; checks no loss, no duplicates"
    checkers: tuple[str, ...] = ("queue",)

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        rng = worker_random(spec, worker)
        for seq in itertools.count():
            queue = queue_name(rng.randrange(spec.keys))
            if is_producer(worker):
                msg_id = f"{worker}-{seq}"
                yield PlannedOp("publish", queue, {"msg_id": msg_id, "body": rng.randrange(BODY_RANGE)},
                                {"msg_id": msg_id, "producer": worker, "attempt": 1})
            else:
                yield PlannedOp("consume", queue)

    def perform(self, worker: Worker, op: PlannedOp) -> None:
        if op.f == "publish":
            execute_with_retries(worker, op)
        else:
            consume_and_ack(worker, op)

    def final(self, spec: TestSpec, new_worker: Callable[[str], Worker], nodes: list[str]) -> None:
        patience = max(DRAIN_SECONDS, spec.time_limit)
        deadline = time.monotonic() + max(DRAIN_MAX_SECONDS, patience)
        with new_worker(nodes[0]) as worker:
            for index in range(spec.keys):
                if not drain_queue(worker, queue_name(index), nodes, patience, deadline):
                    log.warning("queue %s not drained before the deadline", queue_name(index))


WORKLOAD = QueueWorkload()
