"""The stats checker reads the history in one pass: its result is the same on a list and on a
HistoryFile, and the same as the checker that paired every operation first (kept here as the oracle)."""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any, Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultbed.checkers.result import Result, check_safe
from faultbed.checkers.stats import STATS, check_stats
from faultbed.history import HistoryFile, pair_operations
from faultbed.spec import TestSpec


def paired_stats(events: list[dict[str, Any]]) -> Result:
    """The checker as it was: every operation paired into a list, then counted (the oracle)."""
    by_f: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {}
    for op in pair_operations(events):
        entry = by_f.setdefault(op.f, {"ok": 0, "fail": 0, "info": 0})
        entry[op.type] += 1
        if op.completion is not None and op.type == "ok":
            latencies.setdefault(op.f, []).append((op.completion["time"] - op.invoke["time"]) / 1e6)
    for f, values in latencies.items():
        values.sort()
        at = [values[min(len(values) - 1, int(round(q * (len(values) - 1))))] for q in (0.5, 0.99)]
        by_f[f]["latency_ms"] = {"p50": at[0], "p99": at[1], "max": values[-1]}
    ok = sum(entry["ok"] for entry in by_f.values())
    details: dict[str, Any] = {"by_f": by_f, "ok": ok}
    if not ok:
        return Result("stats", "unknown", details, "no operation succeeded: nothing is proven")
    heals = [i for i, e in enumerate(events) if e.get("process") == "nemesis" and e.get("f") == "heal"]
    if heals and events[heals[-1]].get("ready") is False and not any(
            e.get("type") == "ok" and e.get("process") != "nemesis" for e in events[heals[-1] + 1:]):
        details["never_recovered"] = True
        return Result("stats", "unknown", details, "the cluster never recovered after healing and no operation "
                      "succeeded after it: lost writes could not be seen")
    return Result("stats", True, details, f"{ok} ok ops")


@st.composite
def histories(draw: Any) -> list[dict[str, Any]]:
    """Clients invoking and completing in any interleaving (info retires a process), heals between,
    now and then a pairing mistake or an event without a time."""
    events: list[dict[str, Any]] = []
    open_ops: dict[int, dict[str, Any]] = {}
    processes = list(range(draw(st.integers(1, 4))))
    time = 0
    for _ in range(draw(st.integers(0, 40))):
        time += draw(st.integers(0, 3_000_000))
        slot = draw(st.integers(0, len(processes)))
        if slot == len(processes):
            heal = {"type": "info", "process": "nemesis", "f": draw(st.sampled_from(["heal", "start-kill"])),
                    "time": time}
            if draw(st.booleans()):
                heal["ready"] = draw(st.sampled_from([True, False, None]))
            events.append(heal)
            continue
        process = processes[slot]
        if process in open_ops:
            invoke = open_ops.pop(process)
            kind = draw(st.sampled_from(["ok", "ok", "fail", "info"]))
            events.append({"type": kind, "process": process, "f": invoke["f"], "time": time})
            if kind == "info":
                processes[slot] = process + 100
        else:
            open_ops[process] = {"type": "invoke", "process": process, "f": draw(st.sampled_from(["read", "write", "cas"])),
                                 "time": time}
            events.append(open_ops[process])
    if events and draw(st.integers(0, 9)) == 0:
        del events[draw(st.integers(0, len(events) - 1))]["time"]
    if events and draw(st.integers(0, 9)) == 0:
        events.insert(draw(st.integers(0, len(events))), {"type": "ok", "process": 99, "f": "read", "time": 1})
    return [{**event, "index": index} for index, event in enumerate(events)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=histories())
def test_stats_tallied_by_numpy_are_the_same(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    """A long history's columns are tallied and sorted by numpy: the same result, key order included."""
    from faultbed.checkers import stats

    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    with HistoryFile(str(path)) as history:
        expected = judged(check_stats, history)
        kept = stats.NUMPY_FROM
        stats.NUMPY_FROM = 0
        try:
            assert judged(check_stats, history) == expected
        finally:
            stats.NUMPY_FROM = kept


def judged(check: Any, events: Any) -> Any:
    """The result as JSON text (key order included), or the error that stopped the check."""
    try:
        return json.dumps(check(events).to_json())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=histories())
def test_stats_on_a_list_on_a_history_file_and_as_it_was_are_the_same(tmp_path: Path,
                                                                      events: list[dict[str, Any]]) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    expected = judged(paired_stats, events)
    assert judged(check_stats, events) == expected
    with HistoryFile(str(path)) as history:
        assert judged(check_stats, history) == expected
        spec = TestSpec()
        assert check_safe(STATS, history, spec, None) == check_safe(STATS, events, spec, None)


class Event(dict):  # type: ignore[type-arg]
    """An event that can be watched for being freed."""

    __slots__ = ("__weakref__",)


class Watched:
    """A sequence that makes each event when it is read, as HistoryFile does, and counts how many
    of them are alive at once."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events, self.alive, self.most = events, 0, 0
        self.watches: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("stats reads the events in one pass, never by index")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for number, event in enumerate(self.events):
            made = Event(event)
            self.watches[number] = weakref.ref(made, lambda _, number=number: self.freed(number))
            self.alive += 1
            self.most = max(self.most, self.alive)
            yield made
            del made

    def freed(self, number: int) -> None:
        self.alive -= 1
        del self.watches[number]


def test_stats_holds_the_open_operations_not_the_events() -> None:
    events = []
    for number in range(2000):
        process = number % 4
        events.append({"type": "invoke", "process": process, "f": "write", "time": 10 * number})
        events.append({"type": "ok" if number % 3 else "fail", "process": process, "f": "write",
                       "time": 10 * number + 35})
    events.append({"type": "info", "process": "nemesis", "f": "heal", "ready": True, "time": 10**6})
    watched = Watched(events)
    result = check_stats(watched)
    assert result == paired_stats(events) and result.valid is True
    assert watched.most <= 8
