"""Broadcast and g-set: every acknowledged value reaches every node's final read, and nothing else does.

Adds are `broadcast` (broadcast workload) or `add` (g-set) operations whose invocation value is the
element; `read` operations return the node's whole set as a list. After the heal each node is read once
more (final reads, processes from 1,000,000). Against those:

- lost: an acknowledged value in no node's final read; unconverged: in some final reads but not all;
- unexpected: a value some read returned that no client ever added;
- applied_after_fail: a value in a read although every attempt to add it failed (definitely not added);
- malformed_reads: an ok read whose value is not a list (a node that answers with garbage);
- stale (reported, not invalid: the workloads are eventually consistent): a read that lacks a value
  known (acknowledged or read) before the read began; and the time each value took to converge: from
  when it was known to the end of the last read that still lacked it.

With no final read, or nodes whose final reads all failed, lost values cannot be told: unknown, unless
something above already makes the history invalid.
"""

from __future__ import annotations

import bisect
import functools
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from faultbed.checkers.maelstrom.ops import (FinalReads, HistoryChecker, canonical, completed_value, event_time,
                                             examples, final_reads, is_final, milliseconds, node_of, op_index)
from faultbed.checkers.result import UNKNOWN, Result, Valid, count_summary
from faultbed.history import Operation, pair_operations

READ = "read"
ANOMALIES = ("lost", "unconverged", "unexpected", "applied_after_fail", "malformed_reads")


@dataclass
class Element:
    """One value clients tried to add: its attempts, when it was first acknowledged, when first known."""

    value: Any
    attempts: list[Operation] = field(default_factory=list)
    acked_at: int | None = None  # completion time of the first ok add
    acknowledged: bool = False
    known_at: int | None = None  # the earlier of acked_at and the end of the first read that returned it

    def learn(self, time: int | None) -> None:
        if time is not None and (self.known_at is None or time < self.known_at):
            self.known_at = time


@dataclass(frozen=True)
class Read:
    """An ok, well-formed read: its operation and its elements by canonical name."""

    op: Operation
    elements: frozenset[str]

    @property
    def started(self) -> int | None:
        return event_time(self.op.invoke)

    @property
    def ended(self) -> int | None:
        return event_time(self.op.completion)


def collect_elements(adds: list[Operation]) -> dict[str, Element]:
    """Every attempted element by canonical name, with its attempts and first acknowledgement."""
    elements: dict[str, Element] = {}
    for op in adds:
        value = op.invoke.get("value")
        element = elements.setdefault(canonical(value), Element(value))
        element.attempts.append(op)
        if op.type == "ok":
            ended = event_time(op.completion)
            if ended is not None and (element.acked_at is None or ended < element.acked_at):
                element.acked_at = ended
            element.acknowledged = True
            element.learn(ended)
    return elements


def split_reads(ops: list[Operation]) -> tuple[list[Read], list[dict[str, Any]]]:
    """The ok reads as Reads, and the ok reads whose value is not a list (malformed)."""
    reads, malformed = [], []
    for op in ops:
        if op.f != READ or op.type != "ok":
            continue
        value = completed_value(op)
        if isinstance(value, list):
            reads.append(Read(op, frozenset(canonical(v) for v in value)))
        else:
            malformed.append({"op": op_index(op), "node": node_of(op), "value": canonical(value)[:200]})
    return reads, malformed


def foreign_values(reads: list[Read], elements: dict[str, Element]) -> dict[str, list[dict[str, Any]]]:
    """Values read that were never added (unexpected) or whose every add failed (applied_after_fail)."""
    found: dict[str, list[dict[str, Any]]] = {"unexpected": [], "applied_after_fail": []}
    seen: set[str] = set()
    for read in reads:
        for name in sorted(read.elements - seen):
            element = elements.get(name)
            if element is None:
                found["unexpected"].append({"value": name, "first_read": op_index(read.op), "node": node_of(read.op)})
                seen.add(name)
            elif all(op.type == "fail" for op in element.attempts):
                found["applied_after_fail"].append({"value": element.value, "first_read": op_index(read.op),
                                                    "adds": [op_index(op) for op in element.attempts]})
                seen.add(name)
    return found


def missing_from_finals(elements: dict[str, Element], finals: dict[str, Read]) -> dict[str, list[dict[str, Any]]]:
    """Acknowledged values in no final read (lost) or in only some (unconverged)."""
    found: dict[str, list[dict[str, Any]]] = {"lost": [], "unconverged": []}
    if not finals:
        return found
    for name, element in elements.items():
        if not element.acknowledged:
            continue
        absent = [node for node, read in finals.items() if name not in read.elements]
        if absent:
            kind = "lost" if len(absent) == len(finals) else "unconverged"
            acks = [op_index(op) for op in element.attempts if op.type == "ok"]
            found[kind].append({"value": element.value, "acknowledged_by": acks, "missing_from": sorted(absent),
                                "acked_at_ms": milliseconds(element.acked_at)})
    return found


def staleness(elements: dict[str, Element], reads: list[Read]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Reads lacking values known before they began, and per value the end of the last such read."""
    known = sorted((e.known_at, name) for name, e in elements.items() if e.known_at is not None)
    known_times = [at for at, _ in known]
    stale: list[dict[str, Any]] = []
    last_absent: dict[str, int] = {}
    for read in reads:
        started, ended = read.started, read.ended
        if started is None or ended is None:
            continue
        missing = [name for _, name in known[:bisect.bisect_right(known_times, started)]
                   if name not in read.elements]
        if not missing:
            continue
        for name in missing:
            last_absent[name] = max(last_absent.get(name, ended), ended)
        if not is_final(read.op):
            stale.append({"op": op_index(read.op), "node": node_of(read.op), "missing_count": len(missing),
                          "missing": [elements[name].value for name in missing[:5]]})
    return stale, last_absent


def convergence(elements: dict[str, Element], last_absent: dict[str, int], converged: set[str]) -> dict[str, Any]:
    """Median, 95th percentile and maximum time (ms) from a value being known to the last read lacking it."""
    latencies = sorted(max(0, last_absent.get(name, 0) - (elements[name].known_at or 0))
                       if name in last_absent else 0
                       for name in converged if elements[name].known_at is not None)
    if not latencies:
        return {}
    return {"converge_ms_median": milliseconds(int(statistics.median(latencies))),
            "converge_ms_p95": milliseconds(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]),
            "converge_ms_max": milliseconds(latencies[-1])}


def check(events: Sequence[dict[str, Any]], checker: str, add_f: str) -> Result:
    """Judge a history of `add_f` operations and reads (see the module's docstring)."""
    ops = pair_operations(events)
    elements = collect_elements([op for op in ops if op.f == add_f])
    reads, malformed = split_reads(ops)
    for read in reads:
        for name in read.elements & elements.keys():
            elements[name].learn(read.ended)
    finals_found = final_reads(ops, READ)
    finals = {node: Read(op, frozenset(canonical(v) for v in completed_value(op)))
              for node, op in finals_found.by_node.items() if isinstance(completed_value(op), list)}
    anomalies = {**foreign_values(reads, elements), **missing_from_finals(elements, finals),
                 "malformed_reads": malformed}
    stale, last_absent = staleness(elements, reads)
    acknowledged = [name for name, e in elements.items() if e.acknowledged]
    in_every_final = {name for name in acknowledged if finals and all(name in r.elements for r in finals.values())}
    details: dict[str, Any] = {
        "attempted": len(elements), "acknowledged": len(acknowledged),
        "recovered": sum(1 for name, e in elements.items() if not e.acknowledged and finals
                         and any(name in r.elements for r in finals.values())),
        "reads": len(reads), "final_reads": sorted(finals), "nodes_without_final_read": finals_missing(finals_found),
        "stale_read_count": len(stale), "stale_reads": stale[:20]}
    for name, items in anomalies.items():
        details.update(examples(name, items))
    details.update(convergence(elements, last_absent, in_every_final))
    first = first_anomaly(anomalies)
    if first is not None:
        details["first_anomaly_ms"] = first
    return Result(checker, verdict(anomalies, finals, details), details, summary_of(details))


def finals_missing(found: FinalReads) -> list[str]:
    return sorted(found.missing)


def first_anomaly(anomalies: dict[str, list[dict[str, Any]]]) -> float | None:
    times = [item["acked_at_ms"] for kind in ("lost", "unconverged") for item in anomalies[kind]
             if item.get("acked_at_ms") is not None]
    return min(times) if times else None


def verdict(anomalies: dict[str, list[dict[str, Any]]], finals: dict[str, Read], details: dict[str, Any]) -> Valid:
    if any(anomalies.values()):
        return False
    if not finals:
        details["error"] = "no successful final read: cannot tell which values were lost"
        return UNKNOWN
    if details["nodes_without_final_read"]:
        details["error"] = f"no successful final read from {', '.join(details['nodes_without_final_read'])}"
        return UNKNOWN
    return True


def summary_of(details: dict[str, Any]) -> str:
    parts = [count_summary(details, ANOMALIES), details.get("error", "")]
    if not any(parts):
        parts = [f"{details['acknowledged']} acknowledged values in all {len(details['final_reads'])} final reads"]
    if details.get("converge_ms_max") is not None:
        parts.append(f"converged within {details['converge_ms_max']:.0f} ms")
    if details["stale_read_count"]:
        parts.append(f"{details['stale_read_count']} stale reads")
    return "; ".join(p for p in parts if p)


BROADCAST = HistoryChecker(
    "broadcast", "every acknowledged broadcast is in every node's final read; stale reads and convergence time",
    functools.partial(check, checker="broadcast", add_f="broadcast"))
G_SET = HistoryChecker("g-set", "every acknowledged add is in every node's final read, and nothing never added",
                       functools.partial(check, checker="g-set", add_f="add"))
