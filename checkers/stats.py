"""Operation statistics: counts and latencies per function; inconclusive when nothing succeeded."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from faultbed.checkers.result import UNKNOWN, Result
from faultbed.history import EVENT_TYPES, Columns, HistoryFile, Paired, paired_columns, pairs

if TYPE_CHECKING:
    from faultbed.spec import TestSpec


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def check_stats(events: Sequence[dict[str, Any]], spec: Any = None) -> Result:
    """Counts of ok/fail/info per f and latency percentiles (ms); `unknown` if no operation succeeded,
    or if the cluster never recovered after the final heal (every final read failed).

    A run in which nothing succeeded proves nothing about safety, so it must not pass as valid; nor
    does one whose cluster stayed down (after a power loss, say): its lost writes stay invisible.

    One pass, as the events are read: what it holds is the open operations, a float per ok
    operation (its latency) and a few numbers, never the events. A HistoryFile's pass reads its
    columns (the numbers its scan kept), not its events, when they hold every event.
    """
    found = paired_columns(events)
    if found is not None:
        history, columns, paired = found
        tally = _from_columns(columns, paired)
        never_recovered = _never_recovered(history, columns)
    else:
        recovery = _Recovery()
        tally = _from_events(recovery.watch(events))
        never_recovered = recovery.never_recovered()
    by_f = {f: tally.counts[f] for f in sorted(tally.counts, key=tally.first.__getitem__)}
    for f, timed in tally.latencies.items():
        values = _sorted(timed)
        by_f[f]["latency_ms"] = {"p50": _percentile(values, 0.5), "p99": _percentile(values, 0.99),
                                 "max": values[-1]}
    total_ok = sum(entry["ok"] for entry in by_f.values())
    details: dict[str, Any] = {"by_f": by_f, "ok": total_ok}
    if not total_ok:
        return Result("stats", UNKNOWN, details, "no operation succeeded: nothing is proven")
    if never_recovered:
        details["never_recovered"] = True
        return Result("stats", UNKNOWN, details, "the cluster never recovered after healing and no operation "
                      "succeeded after it: lost writes could not be seen")
    return Result("stats", True, details, f"{total_ok} ok ops")


def _sorted(values: array[float]) -> list[float]:
    if len(values) < NUMPY_FROM:
        return sorted(values)
    import numpy

    return numpy.sort(numpy.frombuffer(values, dtype=numpy.float64), kind="stable").tolist()  # type: ignore[no-any-return]


class _Tally:
    """Per f: its counts by outcome, its first operation's number and its ok operations' latencies."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, Any]] = {}
        self.first: dict[str, int] = {}  # each f's first operation in invocation order: by_f's order
        self.latencies: dict[str, array[float]] = {}

    def add(self, number: int, f: str, outcome: str) -> None:
        entry = self.counts.get(f)
        if entry is None:
            entry = self.counts[f] = {"ok": 0, "fail": 0, "info": 0}
        if number < self.first.get(f, number + 1):
            self.first[f] = number
        entry[outcome] += 1

    def timed(self, f: str) -> array[float]:
        timed = self.latencies.get(f)
        if timed is None:
            timed = self.latencies[f] = array("d")
        return timed


def _from_events(events: Iterable[dict[str, Any]]) -> _Tally:
    tally = _Tally()
    error: Exception | None = None
    for number, invoke, completion in pairs(events):
        f = invoke["f"]
        if completion is None:
            tally.add(number, f, "info")
            continue
        tally.add(number, f, completion["type"])
        if completion["type"] == "ok":
            try:
                tally.timed(f).append((completion["time"] - invoke["time"]) / 1e6)
            except (KeyError, TypeError) as exc:  # raised once the pairing is known good, as it was
                error = error or exc
    if error is not None:
        raise error
    return tally


NUMPY_FROM = 100_000  # operations: a longer history's columns are tallied by numpy (its import costs ~0.1 s)


def _from_columns(columns: Columns, paired: Paired) -> _Tally:
    """_from_events over a HistoryFile's columns (every client event has a time there)."""
    if len(paired[0]) >= NUMPY_FROM:
        tally = _from_columns_numpy(columns, paired)
        if tally is not None:
            return tally
    tally = _Tally()
    kinds, fs, times, names = columns.kinds, columns.fs, columns.times, columns.f_names
    ok = Columns.OK
    for invoke, completion in zip(*paired):  # an invocation's place orders as its number does (first)
        f = names[fs[invoke]]
        if completion < 0:
            tally.add(invoke, f, "info")
            continue
        kind = kinds[completion]
        tally.add(invoke, f, EVENT_TYPES[kind])
        if kind == ok:
            tally.timed(f).append((times[completion] - times[invoke]) / 1e6)
    return tally


def _from_columns_numpy(columns: Columns, paired: Paired) -> _Tally | None:
    """_from_columns's tally, in numpy: a 1M-operation run's in 0.1 s, not 1.5 s (None: times so far
    apart that their differences pass 64 bits, which only Python's integers hold)."""
    import numpy

    times = numpy.frombuffer(columns.times, dtype=numpy.int64)
    if len(times) and int(times.max()) - int(times.min()) >= 1 << 62:
        return None
    invokes, completions = (numpy.frombuffer(places, dtype=numpy.int64) for places in paired)
    fs = numpy.frombuffer(columns.fs, dtype=numpy.int32)[invokes]
    done = completions >= 0
    outcomes = numpy.full(len(invokes), EVENT_TYPES.index("info"), dtype=numpy.uint8)
    outcomes[done] = numpy.frombuffer(columns.kinds, dtype=numpy.uint8)[completions[done]]
    counts = numpy.bincount(fs.astype(numpy.int64) * len(EVENT_TYPES) + outcomes,
                            minlength=len(columns.f_ids) * len(EVENT_TYPES)).reshape(-1, len(EVENT_TYPES))
    tally, names = _Tally(), columns.f_names
    for code in numpy.unique(fs).tolist():
        f, chosen = names[code], fs == code
        tally.counts[f] = {outcome: int(counts[code, EVENT_TYPES.index(outcome)]) for outcome in ("ok", "fail", "info")}
        tally.first[f] = int(invokes[chosen].min())
        ok = chosen & (outcomes == Columns.OK)
        if ok.any():  # in pair order, as _from_columns appends them
            latencies = (times[completions[ok]] - times[invokes[ok]]) / 1e6
            tally.timed(f).frombytes(latencies.astype(numpy.float64).tobytes())
    return tally


def _never_recovered(events: HistoryFile, columns: Columns) -> bool:
    """_Recovery's answer from the columns: the last heal said the cluster was not ready, and no
    client operation completed ok after it (the heal itself is read: its `ready`)."""
    last = columns.last_nemesis("heal")
    return last is not None and events[last].get("ready") is False and not columns.client_ok_after(last)


class _Recovery:
    """Watches the events go by for the last heal: whether it said the cluster was not ready and
    nothing completed ok after it (final reads all failed)."""

    def __init__(self) -> None:
        self.healed = False
        self.ready: Any = None  # the last heal's `ready`
        self.ok_after = False

    def watch(self, events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for event in events:
            if event.get("process") == "nemesis":
                if event.get("f") == "heal":
                    self.healed, self.ready, self.ok_after = True, event.get("ready"), False
            elif event.get("type") == "ok":
                self.ok_after = True
            yield event

    def never_recovered(self) -> bool:
        return self.healed and self.ready is False and not self.ok_after


class StatsChecker:
    """Counts and latencies per function; unknown when no operation succeeded (every run has it)."""

    name = "stats"
    description = "ok/fail/info counts and latency percentiles; unknown when nothing succeeded or never recovered"

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        return check_stats(history, spec)


STATS = StatsChecker()
