"""Operation statistics: counts and latencies per function; inconclusive when nothing succeeded."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from faultbed.checkers.result import UNKNOWN, Result
from faultbed.history import pairs

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
    operation (its latency) and a few numbers, never the events.
    """
    counts: dict[str, dict[str, Any]] = {}
    first: dict[str, int] = {}  # each f's first operation in invocation order: by_f's order
    latencies: dict[str, array[float]] = {}
    recovery = _Recovery()
    error: Exception | None = None
    for number, invoke, completion in pairs(recovery.watch(events)):
        f = invoke["f"]
        entry = counts.get(f)
        if entry is None:
            entry = counts[f] = {"ok": 0, "fail": 0, "info": 0}
        if number < first.get(f, number + 1):
            first[f] = number
        if completion is None:
            entry["info"] += 1
            continue
        entry[completion["type"]] += 1
        if completion["type"] == "ok":
            timed = latencies.get(f)
            if timed is None:
                timed = latencies[f] = array("d")
            try:
                timed.append((completion["time"] - invoke["time"]) / 1e6)
            except (KeyError, TypeError) as exc:  # raised once the pairing is known good, as it was
                error = error or exc
    if error is not None:
        raise error
    by_f = {f: counts[f] for f in sorted(counts, key=first.__getitem__)}
    for f, timed in latencies.items():
        values = sorted(timed)
        by_f[f]["latency_ms"] = {"p50": _percentile(values, 0.5), "p99": _percentile(values, 0.99),
                                 "max": values[-1]}
    total_ok = sum(entry["ok"] for entry in by_f.values())
    details: dict[str, Any] = {"by_f": by_f, "ok": total_ok}
    if not total_ok:
        return Result("stats", UNKNOWN, details, "no operation succeeded: nothing is proven")
    if recovery.never_recovered():
        details["never_recovered"] = True
        return Result("stats", UNKNOWN, details, "the cluster never recovered after healing and no operation "
                      "succeeded after it: lost writes could not be seen")
    return Result("stats", True, details, f"{total_ok} ok ops")


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
