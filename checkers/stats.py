"""Operation statistics: counts and latencies per function; inconclusive when nothing succeeded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faultbed.checkers.result import UNKNOWN, Result
from faultbed.history import pair_operations

if TYPE_CHECKING:
    from faultbed.spec import TestSpec


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def check_stats(events: list[dict[str, Any]], spec: Any = None) -> Result:
    """Counts of ok/fail/info per f and latency percentiles (ms); `unknown` if no operation succeeded,
    or if the cluster never recovered after the final heal (every final read failed).

    A run in which nothing succeeded proves nothing about safety, so it must not pass as valid; nor
    does one whose cluster stayed down (after a power loss, say): its lost writes stay invisible.
    """
    by_f: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {}
    for op in pair_operations(events):
        entry = by_f.setdefault(op.f, {"ok": 0, "fail": 0, "info": 0})
        entry[op.type] += 1
        if op.completion is not None and op.type == "ok":
            latencies.setdefault(op.f, []).append((op.completion["time"] - op.invoke["time"]) / 1e6)
    for f, values in latencies.items():
        values.sort()
        by_f[f]["latency_ms"] = {"p50": _percentile(values, 0.5), "p99": _percentile(values, 0.99),
                                 "max": values[-1]}
    total_ok = sum(entry["ok"] for entry in by_f.values())
    details: dict[str, Any] = {"by_f": by_f, "ok": total_ok}
    if not total_ok:
        return Result("stats", UNKNOWN, details, "no operation succeeded: nothing is proven")
    if _never_recovered(events):
        details["never_recovered"] = True
        return Result("stats", UNKNOWN, details, "the cluster never recovered after healing and no operation "
                      "succeeded after it: lost writes could not be seen")
    return Result("stats", True, details, f"{total_ok} ok ops")


def _never_recovered(events: list[dict[str, Any]]) -> bool:
    """The last heal says the cluster was not ready, and nothing completed ok after it (final reads all failed)."""
    heals = [i for i, e in enumerate(events) if e.get("process") == "nemesis" and e.get("f") == "heal"]
    if not heals or events[heals[-1]].get("ready") is not False:
        return False
    return not any(e.get("type") == "ok" and e.get("process") != "nemesis" for e in events[heals[-1] + 1:])


class StatsChecker:
    """Counts and latencies per function; unknown when no operation succeeded (every run has it)."""

    name = "stats"
    description = "ok/fail/info counts and latency percentiles; unknown when nothing succeeded or never recovered"

    def check(self, history: list[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        return check_stats(history, spec)


STATS = StatsChecker()
