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
    """Counts of ok/fail/info per f and latency percentiles (ms); `unknown` if no operation succeeded.

    A run in which nothing succeeded proves nothing about safety, so it must not pass as valid.
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
    summary = f"{total_ok} ok ops" if total_ok else "no operation succeeded: nothing is proven"
    return Result("stats", True if total_ok > 0 else UNKNOWN, {"by_f": by_f, "ok": total_ok}, summary)


class StatsChecker:
    """Counts and latencies per function; unknown when no operation succeeded (every run has it)."""

    name = "stats"
    description = "ok/fail/info counts and latency percentiles; unknown when nothing succeeded"

    def check(self, history: list[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        return check_stats(history, spec)


STATS = StatsChecker()
