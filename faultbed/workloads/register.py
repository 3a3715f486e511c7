"""The `register` workload: read / write / cas over a few keys, checked for linearizability.

Values are small integers (as in Jepsen's cas-register tests) so that cas often
succeeds; the checker partitions the history by key. After the faults are healed,
every node reads every key once, so a node that kept stale state is caught too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

from faultbed.spec import TestSpec
from faultbed.workloads import PlannedOp, worker_random

if TYPE_CHECKING:  # only named: `faultbed check` of a run reads .checkers without the client machinery (14 ms)
    from faultbed.worker import Worker

MIX = (("read", 0.5), ("write", 0.3), ("cas", 0.2))
VALUES = 5


def key_name(index: int) -> str:
    return f"k{index}"


class RegisterWorkload:
    name = "register"
    description = "read, write and cas on a few keys; checks linearizability with porcupine"
    checkers: tuple[str, ...] = ("linearizable",)

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        rng = worker_random(spec, worker)
        names = [f for f, _ in MIX]
        weights = [w for _, w in MIX]
        while True:
            f = rng.choices(names, weights)[0]
            key = key_name(rng.randrange(spec.keys))
            if f == "read":
                yield PlannedOp("read", key)
            elif f == "write":
                yield PlannedOp("write", key, rng.randrange(VALUES))
            else:
                yield PlannedOp("cas", key, [rng.randrange(VALUES), rng.randrange(VALUES)])

    def perform(self, worker: Worker, op: PlannedOp) -> None:
        worker.execute(op)

    def final(self, spec: TestSpec, new_worker: Callable[[str], Worker], nodes: list[str]) -> None:
        for node in nodes:
            with new_worker(node) as worker:
                for index in range(spec.keys):
                    worker.execute(PlannedOp("read", key_name(index)))


WORKLOAD = RegisterWorkload()
