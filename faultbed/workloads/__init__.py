"""Workloads: what clients do (a seeded operation plan), how it is checked.

A workload is a small object: `operations(spec, worker)` yields the worker's planned
operations (a pure function of the spec's seed), `perform(worker, op)` carries one
out through a `faultbed.worker.Worker` (which records every attempt in the
history), `final(...)` runs final reads or a drain after the faults are healed,
and `check(...)` turns the history into verdicts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from faultbed.errors import FaultbedError

if TYPE_CHECKING:
    from faultbed.checkers.result import Result
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
    systems: tuple[str, ...]

    def operations(self, spec: "TestSpec", worker: int) -> Iterator[PlannedOp]: ...
    def perform(self, worker: "Worker", op: PlannedOp) -> None: ...
    def final(self, spec: "TestSpec", new_worker: Callable[[str], "Worker"], nodes: list[str]) -> None: ...
    def check(self, events: list[dict[str, Any]], spec: "TestSpec", run_dir: str | None) -> list["Result"]: ...


def load_workload(name: str) -> Workload:
    """The workload registered as `name` (faultbed.plugins), or FaultbedError."""
    from faultbed import plugins

    return plugins.workload(name)  # type: ignore[no-any-return]


def worker_random(spec: "TestSpec", worker: int, stream: str = "ops") -> random.Random:
    """The seeded random source of one worker's plan; independent of every other worker's."""
    return random.Random(f"{spec.seed}:{stream}:{worker}")
