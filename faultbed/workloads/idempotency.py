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
from typing import Callable, Iterator

from faultbed.cluster.systems import OK, Outcome
from faultbed.spec import TestSpec
from faultbed.worker import Worker
from faultbed.retry import execute_with_retries
from faultbed.workloads import PlannedOp, worker_random

FINAL_READ_SECONDS = 30.0    # how long the final ledger read keeps retrying
PAYLOAD_RANGE = 1_000_000

log = logging.getLogger(__name__)


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
    description = "applies with idempotency keys, retried on other nodes; checks exactly-once effects"
    checkers: tuple[str, ...] = ("idempotency",)

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


WORKLOAD = IdempotencyWorkload()
