"""Echo: every acknowledged echo returned exactly what was sent.

An `echo` invocation's value is the string sent; its ok completion's value is what came back. A
reply that differs (or is missing) is `mismatched`. Failed and indefinite echoes say nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

from faultbed.checkers.maelstrom.ops import HistoryChecker, completed_value, examples, node_of, op_index
from faultbed.checkers.result import UNKNOWN, Result, Valid
from faultbed.history import pair_operations

CHECKER = "echo"


def check(events: Sequence[dict[str, Any]]) -> Result:
    """Judge a history of `echo` operations."""
    echoes = [op for op in pair_operations(events) if op.f == "echo"]
    oks = [op for op in echoes if op.type == "ok"]
    mismatched = [{"op": op_index(op), "node": node_of(op), "sent": op.invoke.get("value"),
                   "received": completed_value(op)}
                  for op in oks if completed_value(op) != op.invoke.get("value")]
    details: dict[str, Any] = {"echoes": len(echoes), "acknowledged": len(oks)}
    details.update(examples("mismatched", mismatched))
    valid: Valid = not mismatched if oks else UNKNOWN
    if mismatched:
        summary = f"mismatched {len(mismatched)} of {len(oks)} acknowledged echoes"
    elif oks:
        summary = f"{len(oks)} echoes returned what was sent"
    else:
        summary = "no echo was acknowledged: nothing to judge"
    return Result(CHECKER, valid, details, summary)


ECHO = HistoryChecker(CHECKER, "every acknowledged echo returned exactly the value sent", check)
