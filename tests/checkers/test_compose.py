"""One checker shape: `check(history, spec, out_dir) -> Result` with its own summary, found by name in
the registry, composed per workload, and a checker that raises costs nobody else's verdict."""

from __future__ import annotations

from typing import Any

import pytest

from faultbed import plugins
from faultbed.checkers.compose import checker_names, run_checkers
from faultbed.checkers.result import Result, check_safe, merge_valid
from faultbed.spec import TestSpec
from tests.checkers.test_idempotency import History


class Raises:
    name = "raises"
    description = "a checker with a bug"

    def check(self, history: list[dict[str, Any]], spec: TestSpec, out_dir: str | None) -> Result:
        raise KeyError("missing")


def idempotent_history(lost: bool) -> list[dict[str, Any]]:
    history = History()
    history.apply(0, "a", "ok", 0)
    history.apply(1, "b", "ok", 1)
    history.read_ledger(2, ["a"] if lost else ["a", "b"])
    return history.events


def test_a_raising_checker_is_unknown_with_its_error_and_the_others_still_judge() -> None:
    spec = TestSpec(workload="idempotency")
    crashed = check_safe(Raises(), [], spec, None)
    assert crashed.valid == "unknown" and crashed.details["error"] == "KeyError: 'missing'"
    assert crashed.summary == "error: KeyError: 'missing'"
    results = [crashed] + run_checkers(("idempotency",), idempotent_history(lost=True), spec, None)
    assert [r.checker for r in results] == ["raises", "idempotency", "stats"]
    assert merge_valid(r.valid for r in results) is False, "an anomaly found by another checker still counts"


def test_an_unknown_checker_name_is_an_unknown_result_not_a_crash() -> None:
    [missing, stats] = run_checkers(("no-such-checker",), idempotent_history(lost=False), TestSpec(), None)
    assert missing.checker == "no-such-checker" and missing.valid == "unknown"
    assert "unknown checker 'no-such-checker'" in missing.summary
    assert stats.valid is True


@pytest.mark.parametrize("lost, valid, summary", [
    (False, True, "2 keys acknowledged"),
    (True, False, "lost 1; first anomaly at 0.00 s"),
])
def test_each_result_says_what_tells_in_its_own_summary(lost: bool, valid: bool, summary: str) -> None:
    [result, stats] = run_checkers(("idempotency",), idempotent_history(lost), TestSpec(workload="idempotency"), None)
    assert (result.valid, result.summary) == (valid, summary)
    assert result.headline() == f"idempotency: {'valid' if valid else 'INVALID'} ({summary})"
    assert stats.summary == "3 ok ops"


def test_workloads_list_their_checkers_by_registered_names_and_every_run_gets_stats() -> None:
    expected = {"register": ("linearizable", "stats"), "idempotency": ("idempotency", "stats"),
                "queue": ("queue", "stats")}
    for name, names in expected.items():
        workload = plugins.workload(name)
        assert checker_names(workload.checkers) == names
        assert not hasattr(workload, "systems"), "compatibility is said once, by the system"
    assert set(plugins.names("checkers")) >= {"linearizable", "idempotency", "queue", "stats"}
    for name in plugins.names("checkers"):
        assert plugins.load("checkers", name).name == name
