"""When an anomaly became visible: the first one of a history, in ms since the first client invocation.

The linearizability checker finds its first anomaly by search (checkers/shrink.py); the
idempotency and queue checkers know, for each anomaly they list, which operation's
completion made it a fact (a second acknowledgement of one message, the attempt that
applied a key once too often). This module turns those moments into the same
`first_anomaly` / `first_anomaly_ms` details, so shrink, report.html and campaigns treat
every checker alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from faultbed.history import NEMESIS


@dataclass(slots=True)
class Recorded:
    """What a checker that keeps many operations keeps of each, instead of its two events: enough
    to name it as an anomaly's moment; a checker adds what its verdict reads
    (checkers/queue.py QueueOp, checkers/idempotency.py Attempt). The two events cost about three
    times as much (the queue checker on 200,000 messages: 984 MB against 347 MB)."""

    process: Any
    f: str
    type: str  # ok, fail or info (an operation that never completed counts as info)
    index: Any  # the invocation's history index
    done: Any  # the completion's history index (None when it never completed, or has none)
    time: int  # the invocation's (0 when it has none)
    done_time: int | None  # the completion's (0 when it has none); None when it never completed
    node: Any  # the completion's node, else the invocation's


@dataclass(frozen=True)
class Moment:
    """An anomaly of `kind` (about `about`) became a fact when operation `op` completed."""

    kind: str
    about: str
    op: Recorded

    @property
    def time(self) -> int:
        """The completion's time, or the invocation's when it never completed (ns)."""
        return int(self.op.done_time if self.op.done_time is not None else self.op.time)


def recorded(invoke: dict[str, Any], completion: dict[str, Any] | None
             ) -> tuple[Any, str, str, Any, Any, int, int | None, Any]:
    """Recorded's fields of one operation, in order (a subclass's come after them)."""
    if completion is None:
        return (invoke["process"], invoke["f"], "info", invoke.get("index"), None, int(invoke.get("time", 0)),
                None, invoke.get("node"))
    return (invoke["process"], invoke["f"], completion["type"], invoke.get("index"), completion.get("index"),
            int(invoke.get("time", 0)), completion.get("time", 0), completion.get("node") or invoke.get("node"))


def time_origin(ops: Iterable[Recorded]) -> int:
    """The first client invocation's time: anomaly times count from it (as linearizable's do)."""
    return min((op.time for op in ops), default=0)


def first_invocation_time(events: Iterable[dict[str, Any]]) -> int:
    """time_origin read from a history's events, as far as its first client invocation (0 without one)."""
    return next((event["time"] for event in events if event.get("type") == "invoke"
                 and event.get("process") != NEMESIS and isinstance(event.get("time"), int)), 0)


def first_anomaly_details(moments: Iterable[Moment], origin: int) -> dict[str, Any]:
    """`first_anomaly` (kind, about, op index, f, node, time_ms) and `first_anomaly_ms`; {} for none."""
    first = min(moments, key=lambda m: (m.time, 0 if m.op.index is None else m.op.index), default=None)
    if first is None:
        return {}
    time_ms = round((first.time - origin) / 1e6, 3)
    found = {"time_ms": time_ms, "kind": first.kind, "about": first.about, "op": first.op.index,
             "f": first.op.f, "node": first.op.node}
    return {"first_anomaly": found, "first_anomaly_ms": time_ms}
