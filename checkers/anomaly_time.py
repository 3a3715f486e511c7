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

from faultbed.history import NEMESIS, Operation


@dataclass(frozen=True)
class Moment:
    """An anomaly of `kind` (about `about`) became a fact when operation `op` completed."""

    kind: str
    about: str
    op: Operation

    @property
    def time(self) -> int:
        """The completion's time, or the invocation's when it never completed (ns)."""
        event = self.op.completion if self.op.completion is not None else self.op.invoke
        return int(event.get("time", 0))


def time_origin(ops: Iterable[Operation]) -> int:
    """The first client invocation's time: anomaly times count from it (as linearizable's do)."""
    return min((int(op.invoke.get("time", 0)) for op in ops), default=0)


def first_invocation_time(events: Iterable[dict[str, Any]]) -> int:
    """time_origin read from a history's events, as far as its first client invocation (0 without one)."""
    return next((event["time"] for event in events if event.get("type") == "invoke"
                 and event.get("process") != NEMESIS and isinstance(event.get("time"), int)), 0)


def first_anomaly_details(moments: Iterable[Moment], origin: int) -> dict[str, Any]:
    """`first_anomaly` (kind, about, op index, f, node, time_ms) and `first_anomaly_ms`; {} for none."""
    first = min(moments, key=lambda m: (m.time, m.op.invoke.get("index", 0)), default=None)
    if first is None:
        return {}
    time_ms = round((first.time - origin) / 1e6, 3)
    node = (first.op.completion or {}).get("node") or first.op.invoke.get("node")
    found = {"time_ms": time_ms, "kind": first.kind, "about": first.about, "op": first.op.invoke.get("index"),
             "f": first.op.f, "node": node}
    return {"first_anomaly": found, "first_anomaly_ms": time_ms}
