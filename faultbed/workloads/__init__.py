"""Workloads: what clients do (a seeded operation plan), and which checkers judge it.

A workload is a small object: `operations(spec, worker)` yields the worker's planned
operations (a pure function of the spec's seed), `perform(worker, op)` carries one
out through a `faultbed.worker.Worker` (which records every attempt in the
history), `final(...)` runs final reads or a drain after the faults are healed,
and `checkers` names the checkers (entry point group `faultbed.checkers`) that turn
the history into verdicts (checkers/compose.py runs them, plus stats). Which systems
run a workload is said once, by the system (`System.workloads`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from faultbed.errors import FaultbedError

if TYPE_CHECKING:
    from faultbed.spec import TestSpec
    from faultbed.worker import Worker


@dataclass(frozen=True)
class PlannedOp:
    """One planned client operation; `extra` fields go into the invoke event as they are."""

    f: str
    key: Any = None
    value: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"f": self.f, "key": self.key, "value": self.value}
        data.update(self.extra)
        return data


class Workload(Protocol):
    name: str
    description: str
    checkers: tuple[str, ...]    # checker names, e.g. ("linearizable",); stats is always added

    def operations(self, spec: "TestSpec", worker: int) -> Iterator[PlannedOp]: ...
    def perform(self, worker: "Worker", op: PlannedOp) -> None: ...
    def final(self, spec: "TestSpec", new_worker: Callable[[str], "Worker"], nodes: list[str]) -> None: ...


def load_workload(name: str) -> Workload:
    """The workload registered as `name` (faultbed.plugins), or FaultbedError."""
    from faultbed import plugins

    return plugins.workload(name)  # type: ignore[no-any-return]


def worker_random(spec: "TestSpec", worker: int, stream: str = "ops") -> random.Random:
    """The seeded random source of one worker's plan; independent of every other worker's."""
    return random.Random(f"{spec.seed}:{stream}:{worker}")
