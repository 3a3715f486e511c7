"""The `idempotency` workload: requests retried under one idempotency key must apply once.

Each planned `apply` carries a key unique to the run, in its value (which the system
sees) and in the history (`idempotency_key`, `attempt`). When an attempt times out
or fails, the worker retries the same key with exponential backoff, a bounded number
of times within a few seconds, each retry on the next node (as a client does after a
failover). After the heal one `read-ledger`
returns the whole ledger, and checkers/idempotency.py judges it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

from checkers.idempotency import check as check_idempotency
from checkers.result import Result
from cluster.systems import OK, Outcome
from faultbed.spec import TestSpec
from faultbed.worker import Worker
from faultbed.workloads import PlannedOp, worker_random

# A client retries with exponential backoff for a few seconds, long enough to outlive a
# leader election: an attempt whose fate was unknown may still commit meanwhile, and a
# retry that also commits is exactly what idempotency keys exist to absorb.
MAX_ATTEMPTS = 10
RETRY_SECONDS = 5.0          # no new attempt starts later than this after the first
FIRST_BACKOFF, MAX_BACKOFF = 0.05, 1.0
FINAL_READ_SECONDS = 30.0    # how long the final ledger read keeps retrying
PAYLOAD_RANGE = 1_000_000

log = logging.getLogger(__name__)


def node_for_attempt(worker: Worker, attempt: int) -> str:
    """Attempt 1 goes to the worker's home node, each retry to the next node in turn."""
    nodes = worker.cluster.nodes
    home = nodes.index(worker.node) if worker.node in nodes else 0
    return nodes[(home + attempt - 1) % len(nodes)]


def with_attempt(op: PlannedOp, attempt: int) -> PlannedOp:
    return PlannedOp(op.f, op.key, op.value, {**op.extra, "attempt": attempt})


def backoff(attempt: int) -> float:
    """Seconds to wait after attempt `attempt` (1-based) failed: doubling, capped."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1)))


def execute_with_retries(worker: Worker, op: PlannedOp) -> Outcome:
    """Execute `op` until an attempt is ok, rotating nodes and backing off, within the retry
    budget (MAX_ATTEMPTS attempts, none started after RETRY_SECONDS); the last outcome."""
    give_up_at = time.monotonic() + RETRY_SECONDS
    attempt = 1
    while True:
        outcome = worker.execute(with_attempt(op, attempt), node=node_for_attempt(worker, attempt))
        if outcome.type == OK or attempt >= MAX_ATTEMPTS:
            return outcome
        pause = backoff(attempt)
        if time.monotonic() + pause > give_up_at:
            return outcome
        time.sleep(pause)
        attempt += 1


def read_until_ok(new_worker: Callable[[str], Worker], nodes: list[str], op: PlannedOp,
                  seconds: float) -> Outcome:
    """Ask node after node for `op` until one answers ok or `seconds` pass; the last outcome."""
    deadline = time.monotonic() + seconds
    outcome = Outcome("fail", error="no attempt made")
    with new_worker(nodes[0]) as worker:
        attempt = 0
        while time.monotonic() < deadline:
            outcome = worker.execute(op, node=nodes[attempt % len(nodes)])
            if outcome.type == OK:
                break
            attempt += 1
            time.sleep(min(0.5, 0.05 * attempt))
    return outcome


class IdempotencyWorkload:
    name = "idempotency"
    systems: tuple[str, ...] = ("raftkv",)

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        rng = worker_random(spec, worker)
        seq = 0
        while True:
            key = f"w{worker}-{seq}"
            seq += 1
            yield PlannedOp("apply", None, {"idempotency_key": key, "payload": rng.randrange(PAYLOAD_RANGE)},
                            {"idempotency_key": key, "attempt": 1})

    def perform(self, worker: Worker, op: PlannedOp) -> None:
        execute_with_retries(worker, op)

    def final(self, spec: TestSpec, new_worker: Callable[[str], Worker], nodes: list[str]) -> None:
        seconds = max(FINAL_READ_SECONDS, 10 * spec.op_timeout)
        outcome = read_until_ok(new_worker, nodes, PlannedOp("read-ledger"), seconds)
        if outcome.type != OK:
            log.warning("no ledger read succeeded in %.0f s (last: %s %s)", seconds, outcome.type, outcome.error)

    def check(self, events: list[dict[str, Any]], spec: TestSpec, run_dir: str | None) -> list[Result]:
        return [check_idempotency(events, spec)]


WORKLOAD = IdempotencyWorkload()
