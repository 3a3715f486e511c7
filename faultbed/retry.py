"""One client request retried as a careful client would: the same request, the next node, backing off.

Used by workloads whose requests carry their own identity (idempotency keys,
message ids), where a retry after an unknown outcome is exactly what the system
under test must absorb.
"""

from __future__ import annotations

import time

from faultbed.cluster.systems import OK, Outcome
from faultbed.worker import Worker
from faultbed.workloads import PlannedOp

# A client retries with exponential backoff for a few seconds, long enough to outlive a
# leader election: an attempt whose fate was unknown may still commit meanwhile, and a
# retry that also commits is exactly what idempotency keys exist to absorb.
MAX_ATTEMPTS = 10
RETRY_SECONDS = 5.0          # no new attempt starts later than this after the first
FIRST_BACKOFF, MAX_BACKOFF = 0.05, 1.0


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
