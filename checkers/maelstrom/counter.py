"""G-counter and pn-counter: every read is a value the adds allow.

`add` operations carry the delta as their invocation value (negative only for pn-counter); `read`
returns the counter as an integer. An ok add certainly took effect, a failed one certainly did not, an
indefinite (info) one may have. So every final read (after the heal, processes from 1,000,000) must lie in

    [sum of ok deltas + sum of negative info deltas,  sum of ok deltas + sum of positive info deltas]

(out_of_bounds otherwise). A read during the run may be stale, but it can only have seen adds invoked
before it completed, each at most once: it must lie between the sums of the negative and of the positive
deltas of the adds (not failed) invoked before it ended (impossible_reads otherwise; a counter that
counts one add twice is caught here too). An ok read that is not an integer is malformed_reads.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Sequence

from faultbed.checkers.maelstrom.ops import (HistoryChecker, as_integer, canonical, completed_value, event_time,
                                             examples, final_reads, is_final, milliseconds, node_of, op_index)
from faultbed.checkers.result import UNKNOWN, Result, Valid, count_summary
from faultbed.history import Operation, pair_operations

CHECKER = "counter"
ADD, READ = "add", "read"
ANOMALIES = ("out_of_bounds", "impossible_reads", "malformed_reads")


@dataclass(frozen=True)
class Bounds:
    lower: int
    upper: int

    def admits(self, value: int) -> bool:
        return self.lower <= value <= self.upper


class PossibleAdds:
    """The adds that may have taken effect, ordered by invocation, as running sums of their negative and
    positive parts: what a read that ended at a given history index can have seen."""

    def __init__(self, adds: list[tuple[int, int]]) -> None:
        ordered = sorted(adds)  # (invocation index, delta)
        self.invoked = [index for index, _ in ordered]
        self.negative = [0, *accumulate(min(0, delta) for _, delta in ordered)]
        self.positive = [0, *accumulate(max(0, delta) for _, delta in ordered)]

    def before(self, index: int) -> Bounds:
        count = bisect.bisect_left(self.invoked, index)
        return Bounds(self.negative[count], self.positive[count])


def final_bounds(adds: list[tuple[Operation, int]]) -> Bounds:
    """What the counter can hold once every add has finished (see the module's docstring)."""
    definite = sum(delta for op, delta in adds if op.type == "ok")
    maybe = [delta for op, delta in adds if op.type == "info"]
    return Bounds(definite + sum(d for d in maybe if d < 0), definite + sum(d for d in maybe if d > 0))


def judge_reads(reads: list[Operation], possible: PossibleAdds, final: Bounds) -> dict[str, list[dict[str, Any]]]:
    """Out-of-bounds final reads, impossible reads during the run, malformed reads."""
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in ANOMALIES}
    for op in reads:
        value = as_integer(completed_value(op))
        where = {"op": op_index(op), "node": node_of(op), "time_ms": milliseconds(event_time(op.completion))}
        if value is None:
            found["malformed_reads"].append({**where, "value": canonical(completed_value(op))[:200]})
            continue
        ended = (op.completion or {}).get("index")
        if is_final(op) and not final.admits(value):
            found["out_of_bounds"].append({**where, "value": value, "lower": final.lower, "upper": final.upper})
        elif isinstance(ended, int) and not possible.before(ended).admits(value):
            seen = possible.before(ended)
            found["impossible_reads"].append({**where, "value": value, "lower": seen.lower, "upper": seen.upper})
    return found


def check(events: Sequence[dict[str, Any]]) -> Result:
    """Judge a history of `add` and `read` operations on one counter."""
    ops = pair_operations(events)
    adds, malformed_adds = [], []
    for op in ops:
        if op.f != ADD:
            continue
        delta = as_integer(op.invoke.get("value"))
        if delta is None:
            shown = canonical(op.invoke.get("value"))[:80]
            malformed_adds.append({"op": op_index(op), "type": op.type, "value": shown})
        else:
            adds.append((op, delta))
    possible = PossibleAdds([(op_index(op), delta) for op, delta in adds
                             if op.type != "fail" and isinstance(op_index(op), int)])
    final = final_bounds(adds)
    reads = [op for op in ops if op.f == READ and op.type == "ok"]
    anomalies = judge_reads(reads, possible, final)
    finals = final_reads(ops, READ)
    details: dict[str, Any] = {
        "adds": len(adds), "acknowledged_adds": sum(1 for op, _ in adds if op.type == "ok"),
        "indefinite_adds": sum(1 for op, _ in adds if op.type == "info"),
        "lower": final.lower, "upper": final.upper, "reads": len(reads),
        "final_values": {node: completed_value(op) for node, op in sorted(finals.by_node.items())},
        "nodes_without_final_read": sorted(finals.missing)}
    details.update(examples("malformed_adds", malformed_adds))
    for name, items in anomalies.items():
        details.update(examples(name, items))
    times = [item["time_ms"] for name in ("out_of_bounds", "impossible_reads") for item in anomalies[name]
             if item["time_ms"] is not None]
    if times:
        details["first_anomaly_ms"] = min(times)
    return Result(CHECKER, verdict(anomalies, finals.by_node, malformed_adds, details), details, summary_of(details))


def verdict(anomalies: dict[str, list[dict[str, Any]]], finals: dict[str, Operation],
            malformed_adds: list[dict[str, Any]], details: dict[str, Any]) -> Valid:
    if any(anomalies.values()):
        return False
    if any(add["type"] != "fail" for add in malformed_adds):
        details["error"] = "adds whose delta is not an integer: no bounds"
    elif not finals:
        details["error"] = "no successful final read: cannot tell what the counter converged to"
    elif details["nodes_without_final_read"]:
        details["error"] = f"no successful final read from {', '.join(details['nodes_without_final_read'])}"
    return UNKNOWN if details.get("error") else True


def summary_of(details: dict[str, Any]) -> str:
    bounds = f"[{details['lower']}, {details['upper']}]"
    counts = count_summary(details, ANOMALIES)
    if counts:
        first = (details.get("out_of_bounds") or details.get("impossible_reads") or [{}])[0]
        if "value" in first:
            counts += f" (first: {first['node']} read {first['value']} outside [{first['lower']}, {first['upper']}])"
        return counts
    if details.get("error"):
        return details["error"]
    values = sorted({canonical(v) for v in details["final_values"].values()})
    return f"final reads {', '.join(values)} on {len(details['final_values'])} nodes within {bounds}"


COUNTER = HistoryChecker(CHECKER, "g-counter/pn-counter: final reads within the bounds of ok and indefinite "
                                  "adds; no impossible read", check)
