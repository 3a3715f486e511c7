"""What the Maelstrom checkers share: final reads per node, values as canonical keys, op times.

Final reads are the reads made after the heal by processes from FINAL_PROCESS_BASE on (the runner's
numbering), one or more per node; a node's last ok read is its final state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from faultbed.checkers.result import Result
from faultbed.history import Operation

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

FINAL_PROCESS_BASE = 1_000_000  # faultbed.runner numbers final-phase workers from here
MAX_EXAMPLES = 50


def canonical(value: Any) -> str:
    """A hashable name for any JSON value: 1, 1.0, "1" and true stay distinct; dict order does not matter."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def is_final(op: Operation) -> bool:
    """Made by a final-phase worker (after the heal)."""
    return isinstance(op.process, int) and not isinstance(op.process, bool) and op.process >= FINAL_PROCESS_BASE


def node_of(op: Operation) -> str:
    """The node that served an operation (its completion's `node`, else its invocation's)."""
    for event in (op.completion or {}, op.invoke):
        if event.get("node") is not None:
            return str(event["node"])
    return f"process {op.process}"


def op_index(op: Operation) -> Any:
    """The history index of an operation's invocation."""
    return op.invoke.get("index")


def event_time(event: dict[str, Any] | None) -> int | None:
    """An event's `time` in nanoseconds, or None when it has none (hand-made or foreign histories)."""
    if event is None:
        return None
    time = event.get("time")
    return time if isinstance(time, int) and not isinstance(time, bool) else None


def completed_value(op: Operation) -> Any:
    """What the completion returned (None when it returned nothing), never the invocation's value."""
    return None if op.completion is None else op.completion.get("value")


def as_integer(value: Any) -> int | None:
    """An integer, or an integral float as one; None for anything else (bools, strings, 1.5, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@dataclass(frozen=True)
class FinalReads:
    """Each node's last ok final read, and the nodes whose final reads all failed or never finished."""

    by_node: dict[str, Operation]
    missing: list[str]


def final_reads(ops: list[Operation], f: str = "read") -> FinalReads:
    """The final reads of a history, by node."""
    by_node: dict[str, Operation] = {}
    attempted: list[str] = []
    for op in ops:
        if op.f != f or not is_final(op):
            continue
        node = node_of(op)
        if node not in attempted:
            attempted.append(node)
        if op.type == "ok":
            by_node[node] = op
    return FinalReads(by_node, [node for node in attempted if node not in by_node])


def examples(name: str, items: list[Any]) -> dict[str, Any]:
    """`{name}_count` and the first MAX_EXAMPLES items under `name`."""
    return {f"{name}_count": len(items), name: items[:MAX_EXAMPLES]}


def milliseconds(nanoseconds: int | None) -> float | None:
    return None if nanoseconds is None else round(nanoseconds / 1e6, 3)


@dataclass(frozen=True)
class HistoryChecker:
    """A checker (result.Checker) that judges the history alone: no spec, no files."""

    name: str
    description: str
    judge: Callable[[Sequence[dict[str, Any]]], Result]

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        return self.judge(history)
