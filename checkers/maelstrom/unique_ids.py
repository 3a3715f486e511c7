"""Unique ids: no two acknowledged `generate` operations returned the same id.

Ids are compared as JSON values (1 and "1" differ; so do 1 and 1.0). A duplicate is named with every
operation that returned it and the nodes that served them. An ok without an id is `missing_id`: a
node that acknowledges without answering is broken too.
"""

from __future__ import annotations

from typing import Any, Sequence

from faultbed.checkers.maelstrom.ops import (HistoryChecker, canonical, completed_value, event_time, examples,
                                             milliseconds, node_of, op_index)
from faultbed.checkers.result import UNKNOWN, Result, Valid
from faultbed.history import Operation, pair_operations

CHECKER = "unique-ids"


def duplicated_ids(oks: list[Operation]) -> list[dict[str, Any]]:
    """Ids returned by more than one acknowledged generate, each with its operations, in first-seen order."""
    by_id: dict[str, list[Operation]] = {}
    for op in oks:
        by_id.setdefault(canonical(completed_value(op)), []).append(op)
    return [{"id": completed_value(group[0]), "ops": [op_index(op) for op in group],
             "nodes": [node_of(op) for op in group], "time": event_time(group[1].completion)}
            for group in by_id.values() if len(group) > 1]


def check(events: Sequence[dict[str, Any]]) -> Result:
    """Judge a history of `generate` operations."""
    generates = [op for op in pair_operations(events) if op.f == "generate"]
    oks = [op for op in generates if op.type == "ok" and completed_value(op) is not None]
    missing = [{"op": op_index(op), "node": node_of(op)}
               for op in generates if op.type == "ok" and completed_value(op) is None]
    duplicated = duplicated_ids(oks)
    details: dict[str, Any] = {"generates": len(generates), "acknowledged": len(oks)}
    details.update(examples("duplicated", duplicated))
    details.update(examples("missing_id", missing))
    times = [d["time"] for d in duplicated if d["time"] is not None]
    if times:
        details["first_anomaly_ms"] = milliseconds(min(times))
    valid: Valid = UNKNOWN if not oks and not missing else not (duplicated or missing)
    if duplicated or missing:
        parts = [f"duplicated {len(duplicated)} ids" if duplicated else "",
                 f"{len(missing)} acknowledged without an id" if missing else ""]
        summary = "; ".join(p for p in parts if p)
        if duplicated:
            summary += f" (first: {canonical(duplicated[0]['id'])[:60]} from ops {duplicated[0]['ops'][:4]})"
    elif oks:
        summary = f"{len(oks)} ids, all unique"
    else:
        summary = "no generate was acknowledged: nothing to judge"
    return Result(CHECKER, valid, details, summary)


UNIQUE_IDS = HistoryChecker(CHECKER, "no two acknowledged generate operations returned the same id", check)
