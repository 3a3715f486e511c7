"""raft-invariants: Raft's safety properties, checked on every node's Raft trace.

A history shows a Raft bug only when a client reads the damage; a node's trace
(docs/RAFT-TRACE.md) shows it when it happens. Six invariants (Raft paper, Figure 3,
plus pysyncobj #166 and #167):

    election-safety        at most one leader per term
    log-matching           every node holds the same entry at a committed index
    leader-completeness    a leader holds every entry committed in earlier terms, and no
                           node loses or changes an entry it committed
    state-machine-safety   every node applies the same entry at each index
    commit-monotonic       a node's commit index never decreases (within one start)
    match-monotonic        a leader's match index for a peer never decreases (within a term)

Reads only files: the traces in `<out_dir>/data/<node>/` named by the system's
`traits.raft_trace`. The first violation (by trace time) is named with its node,
time and trace lines.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from faultbed.checkers.anomaly_time import first_invocation_time
from faultbed.checkers.result import UNKNOWN, Result
from faultbed.errors import FaultbedError
from faultbed.history import json_line
from faultbed.memory import check_bound, cycles_uncollected

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

INVARIANTS = ("election-safety", "log-matching", "leader-completeness", "state-machine-safety",
              "commit-monotonic", "match-monotonic", "current-term-commit")
MAX_LISTED = 20
Entry = tuple[int, str]  # (term, digest)


@dataclass(frozen=True)
class Line:
    """One trace record and where it is."""

    node: str
    line: int
    record: dict[str, Any]

    @property
    def time(self) -> int:
        return int(self.record.get("time", 0))

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "line": self.line, "record": self.record}


@dataclass(frozen=True)
class Violation:
    invariant: str
    node: str
    time: int
    message: str
    lines: tuple[Line, ...]

    def to_json(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "node": self.node, "time": self.time, "message": self.message,
                "lines": [line.to_json() for line in self.lines]}


def read_trace(path: str, node: str) -> list[Line]:
    """A trace file's records; a line cut short by a crash (the last one) is skipped."""
    return list(iter_trace(path, node))


def iter_trace(path: str, node: str) -> Iterator[Line]:
    """read_trace's records one at a time, read as they are taken: a long run's traces (3 million
    records after 10 minutes at full rate, 0.8 KB each as Lines) are never all held."""
    with open(path, encoding="utf-8") as fh:
        for number, text in enumerate(fh, 1):
            if number % 4096 == 0:
                check_bound()  # within the check's memory bound (faultbed/memory.py: why here)
            try:
                record = json_line(text)
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                yield Line(node, number, record)


@dataclass
class NodeLog:
    """One node's Raft log as its trace rebuilds it."""

    entries: dict[int, tuple[Entry, Line]] = field(default_factory=dict)
    base: int = 0  # indexes below it were compacted (in a snapshot): present, content unknown

    def holds(self, index: int, entry: Entry) -> bool | None:
        """True/False when known; None when the index is compacted."""
        if index < self.base:
            return None
        held = self.entries.get(index)
        return held is not None and held[0] == entry


@dataclass
class Checking:
    """What the replay of all traces has seen so far, and what it found."""

    leaders: dict[int, Line] = field(default_factory=dict)
    committed: dict[int, tuple[Entry, Line]] = field(default_factory=dict)         # index -> first commit
    applied: dict[int, tuple[Entry, Line]] = field(default_factory=dict)
    committed_in_term: dict[int, dict[int, tuple[Entry, Line]]] = field(default_factory=dict)
    elections: list[tuple[Line, LogCopy, int]] = field(default_factory=list)  # leader, its log, base
    violations: list[Violation] = field(default_factory=list)

    def violate(self, invariant: str, at: Line, message: str, *lines: Line) -> None:
        """A violation happens at the latest of its lines (nodes are replayed one after another)."""
        ordered = tuple(sorted((*lines, at), key=lambda line: line.time))
        self.violations.append(Violation(invariant, ordered[-1].node, ordered[-1].time, message, ordered))


def replay_node(lines: Iterable[Line], checking: Checking) -> int:
    """Walk one node's trace: its own invariants now, the cross-node ones into `checking`; the
    number of records walked (the trace is read once, as it goes)."""
    log = NodeLog()
    commit: tuple[int, Line] | None = None
    match: dict[tuple[int, str], tuple[int, Line]] = {}
    removed: dict[int, tuple[Entry, Line]] = {}  # committed entries truncated, until re-appended
    term, role = 0, "follower"
    walked, line = 0, None
    for line in lines:
        walked += 1
        r, event = line.record, line.record["event"]
        if event != "append" and removed:
            _lost(removed, line, checking)
        if event == "start":
            log = NodeLog()
            entries = [(int(i), int(t), str(d)) for i, t, d in r.get("log", [])]
            for i, t, d in entries:
                log.entries[i] = ((t, d), line)
            log.base = min((i for i, _, _ in entries), default=0)
            commit, match, role = None, {}, "follower"
        elif event == "term":
            term = int(r["term"])
        elif event == "role":
            role, term = str(r["role"]), int(r["term"])
            if role == "leader":
                _elected(line, term, log, checking)
        elif event == "append":
            index, entry = int(r["index"]), (int(r["term"]), str(r["digest"]))
            held = removed.pop(index, None)
            if held is not None and held[0] != entry:
                checking.violate("leader-completeness", line, f"committed entry {index} changed from "
                                 f"term {held[0][0]} to term {entry[0]} on {line.node}", held[1])
            log.entries[index] = (entry, line)
        elif event == "truncate":
            index = int(r["index"])
            for i in [i for i in log.entries if i >= index]:
                if commit is not None and i <= commit[0]:
                    removed[i] = log.entries[i]
                del log.entries[i]
        elif event == "compact":
            log.base = max(log.base, int(r["index"]))
            for i in [i for i in log.entries if i < log.base]:
                del log.entries[i]
        elif event == "clear":
            log = NodeLog(base=2 ** 62)  # a snapshot replaced everything: unknown until the next append
        elif event == "commit":
            commit = _committed(line, commit, log, role, int(r.get("term", term)), checking)
        elif event == "apply":
            _first_or_violate(checking.applied, "state-machine-safety", int(r["index"]),
                              (int(r["term"]), str(r["digest"])), line, checking)
        elif event == "match":
            key = (int(r["term"]), str(r["peer"]))
            before = match.get(key)
            if before is not None and int(r["index"]) < before[0]:
                checking.violate("match-monotonic", line, f"{line.node}'s match index for {key[1]} went from "
                                 f"{before[0]} to {r['index']} in term {key[0]}", before[1])
            match[key] = (int(r["index"]), line)
        if event == "append" and log.base == 2 ** 62:
            log.base = int(r["index"])
    if removed and line is not None:
        _lost(removed, line, checking)
    return walked


def _lost(removed: dict[int, tuple[Entry, Line]], at: Line, checking: Checking) -> None:
    index = min(removed)
    checking.violate("leader-completeness", at, f"{at.node} truncated committed entry {index} "
                     f"(term {removed[index][0][0]}) and did not re-append it", removed[index][1])
    removed.clear()


def _elected(line: Line, term: int, log: NodeLog, checking: Checking) -> None:
    other = checking.leaders.get(term)
    if other is not None and other.node != line.node:
        checking.violate("election-safety", line, f"two leaders in term {term}: {other.node} and {line.node}",
                         other)
    checking.leaders.setdefault(term, line)
    checking.elections.append((line, LogCopy(log), log.base))


class LogCopy:
    """A leader's log at its election, as leader completeness needs it (entry by index): a list
    over the log's indexes, 8 bytes an entry, not a dict's 100 (a long run has many elections of
    a long log); a dict when the indexes are sparse (a trace of another system's making)."""

    __slots__ = ("low", "entries", "sparse")

    def __init__(self, log: NodeLog) -> None:
        held = log.entries
        self.low = min(held, default=0)
        span = max(held, default=-1) - self.low + 1
        self.sparse: dict[int, Entry] | None = None
        self.entries: list[Entry | None] = []
        if span > 2 * len(held) + 1024:
            self.sparse = {i: e for i, (e, _) in held.items()}
        else:
            self.entries = [held[i][0] if i in held else None for i in range(self.low, self.low + span)]

    def get(self, index: int) -> Entry | None:
        if self.sparse is not None:
            return self.sparse.get(index)
        position = index - self.low
        return self.entries[position] if 0 <= position < len(self.entries) else None


def _committed(line: Line, before: tuple[int, Line] | None, log: NodeLog, role: str, term: int,
               checking: Checking) -> tuple[int, Line]:
    index = int(line.record["index"])
    if before is not None and index < before[0]:
        checking.violate("commit-monotonic", line, f"{line.node}'s commit index went from {before[0]} to {index}",
                         before[1])
    low = before[0] + 1 if before is not None else 1
    held = log.entries.get(index)
    if role == "leader" and index >= low and held is not None and held[0][0] != term:
        # Raft never commits an entry of an earlier term by counting replicas (section 5.4.2,
        # Figure 8): a leader's commit index moves only onto an entry of its own term
        checking.violate("current-term-commit", line, f"{line.node}, leader in term {term}, committed up to "
                         f"index {index}, an entry of term {held[0][0]}", held[1])
    for i in range(low, index + 1):
        held = log.entries.get(i)
        if held is None:
            continue  # compacted or never seen: nothing to compare
        _first_or_violate(checking.committed, "log-matching", i, held[0], line, checking)
        if role == "leader":
            checking.committed_in_term.setdefault(term, {}).setdefault(i, (held[0], line))
    return (max(index, before[0]) if before is not None else index, line)


def _first_or_violate(seen: dict[int, tuple[Entry, Line]], invariant: str, index: int, entry: Entry,
                      line: Line, checking: Checking) -> None:
    first = seen.setdefault(index, (entry, line))
    if first[0] != entry:
        checking.violate(invariant, line, f"index {index}: {line.node} has term {entry[0]} ({entry[1]}), "
                         f"{first[1].node} had term {first[0][0]} ({first[0][1]})", first[1])


def check_leader_completeness(checking: Checking) -> None:
    """Every leader's log at election holds every entry a leader of an earlier term had committed by then.

    Each term's committed entries are sorted once, and an election looks only at those from its log's
    base on (bisect): below it the log was compacted, nothing to compare. Every election looked at
    every entry committed before it, a product that grew with the run: on a 10-minute max-rate
    run's traces (2.4M records, 44 elections, 174k committed entries) 3.5 s of the check's 26 s,
    0.3 s now."""
    terms = [(earlier, sorted(committed.items())) for earlier, committed in sorted(checking.committed_in_term.items())]
    for line, entries, base in checking.elections:
        term, time = int(line.record["term"]), line.time
        for earlier, items in terms:
            if earlier >= term:
                break
            for place in range(bisect_left(items, base, key=_index), len(items)):
                index, (entry, at) = items[place]
                # committed before this election (terms alone mislead once a bug reuses them)
                if at.time < time and entries.get(index) != entry:
                    checking.violate("leader-completeness", line, f"{line.node} became leader of term {term} "
                                     f"without entry {index} committed in term {earlier}", at)
                    break


def _index(item: tuple[int, Any]) -> int:
    return item[0]


def check_traces(traces: Mapping[str, Iterable[Line]]) -> list[Violation]:
    """Every violation in these traces (node -> its records, each read once), earliest first."""
    return _replay(traces)[0]


def _replay(traces: Mapping[str, Iterable[Line]]) -> tuple[list[Violation], dict[str, int]]:
    """check_traces' violations, and how many records each node's trace had."""
    checking = Checking()
    with cycles_uncollected():  # it keeps every committed and applied entry's line, and makes no cycles
        walked = {node: replay_node(traces[node], checking) for node in sorted(traces)}
        check_leader_completeness(checking)
    return sorted(checking.violations, key=lambda v: (v.time, v.invariant)), walked


def result_for(traces: Mapping[str, Iterable[Line]], missing: list[str], name: str = "raft-invariants") -> Result:
    """The Result for these traces; `missing` names nodes whose trace was not found."""
    violations, walked = _replay(traces)
    counts = {inv: sum(1 for v in violations if v.invariant == inv) for inv in INVARIANTS}
    details: dict[str, Any] = {
        "nodes": walked, "missing": missing,
        "violation_count": len(violations), "counts": {k: n for k, n in counts.items() if n},
        "violations": [v.to_json() for v in violations[:MAX_LISTED]]}
    if violations:
        first = violations[0]
        details["first_violation"] = first.to_json()
        return Result(name, False, details, summary=f"{first.invariant}: {first.message} "
                      f"({len(violations)} violation(s))")
    if not traces:
        return Result(name, UNKNOWN, details, summary="no Raft trace found")
    return Result(name, True, details, summary=f"{sum(walked.values())} trace records, "
                  f"{len(traces)} node(s)" + (f"; missing {', '.join(missing)}" if missing else ""))


def trace_paths(spec: "TestSpec", out_dir: str | None) -> Iterator[tuple[str, str]]:
    """(node, path) of every node's trace the system declares."""
    from faultbed.cluster.systems import load_system

    relative = load_system(spec.system).traits.raft_trace
    if not relative:
        raise FaultbedError(f"system {spec.system} declares no Raft trace (traits.raft_trace)")
    if out_dir is None:
        raise FaultbedError("raft-invariants needs the run directory (the nodes' data directories)")
    for i in range(1, spec.nodes + 1):
        node = f"n{i}"
        yield node, os.path.join(out_dir, "data", node, relative)


class RaftInvariants:
    """The checker (entry point `raft-invariants`)."""

    name = "raft-invariants"
    description = "Raft safety invariants on every node's Raft trace (docs/RAFT-TRACE.md)"

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        traces: dict[str, Iterable[Line]] = {}
        missing = []
        for node, path in trace_paths(spec, out_dir):
            if os.path.exists(path):
                traces[node] = iter_trace(path, node)  # read as replayed, one node after another
            else:
                missing.append(node)
        result = result_for(traces, missing, self.name)
        if result.valid is not False or out_dir is None or spec.backend not in SHARED_CLOCK_BACKENDS:
            return result
        timed = _anomaly_time(result.details["first_violation"], history, out_dir)
        if not timed:
            return result
        return Result(result.checker, result.valid, {**result.details, **timed},
                      f"{result.summary}, the first at {timed['first_anomaly_ms'] / 1000:.2f} s")


# the nodes' traces are stamped by this machine's clock (processes, containers): their times fall on
# the history's; a remote host's clock is its own
SHARED_CLOCK_BACKENDS = ("local", "docker")


def _anomaly_time(first: dict[str, Any], history: Sequence[dict[str, Any]], out_dir: str) -> dict[str, Any]:
    """`first_anomaly` (invariant, message, node, time_ms) and `first_anomaly_ms` of the first violation,
    in ms since the history's first client invocation (as every checker's): its trace time (Unix ns) on
    the history's clock through origin.json's note of the history's time 0. {} for a run that did not
    note it (one from before, or one that never started its clients). A violation before the clients'
    first operation (an election during setup) is at 0."""
    from faultbed.store import CLOCK, read_origin  # here: checking traces needs no store otherwise

    unix_origin = read_origin(out_dir).get(CLOCK)
    if isinstance(unix_origin, bool) or not isinstance(unix_origin, int):
        return {}
    time_ms = round(max(0.0, (first["time"] - unix_origin - first_invocation_time(history)) / 1e6), 3)
    found = {"time_ms": time_ms, "kind": first["invariant"], "about": first["message"], "node": first["node"]}
    return {"first_anomaly": found, "first_anomaly_ms": time_ms}


RAFT_INVARIANTS = RaftInvariants()
