"""The idempotency checker on hand-written histories: one test per anomaly it reports."""

from __future__ import annotations

from typing import Any

import pytest

from faultbed.checkers.idempotency import check
from faultbed.errors import HistoryError


class History:
    """Builds a history event by event; `apply` returns nothing, the events are in `events`."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _add(self, event: dict[str, Any]) -> int:
        event["index"] = len(self.events)
        event["time"] = event["index"] * 1000
        self.events.append(event)
        return event["index"]

    def apply(self, process: int, key: str, outcome: str, position: Any = None, attempt: int = 1) -> int:
        """One apply attempt: invoke then completion; returns the invoke's index."""
        index = self._add({"type": "invoke", "process": process, "f": "apply",
                           "value": {"idempotency_key": key, "payload": f"p-{key}"},
                           "idempotency_key": key, "attempt": attempt})
        self._add({"type": outcome, "process": process, "f": "apply",
                   "value": position if outcome == "ok" else None})
        return index

    def read_ledger(self, process: int, keys: list[str] | None, outcome: str = "ok") -> int:
        index = self._add({"type": "invoke", "process": process, "f": "read-ledger", "value": None})
        ledger = [{"idempotency_key": k, "payload": f"p-{k}"} for k in keys or []]
        self._add({"type": outcome, "process": process, "f": "read-ledger",
                   "value": ledger if outcome == "ok" else None})
        return index

    def nemesis(self, f: str) -> None:
        self._add({"type": "info", "process": "nemesis", "f": f, "value": None})


def test_every_key_applied_once_is_valid() -> None:
    h = History()
    h.apply(0, "a", "ok", 0)
    h.apply(1, "b", "ok", 1)
    h.read_ledger(9, ["a", "b"])
    result = check(h.events)
    assert result.valid is True, result.details
    assert result.details["keys_acknowledged"] == 2


def test_retry_after_info_that_took_effect_once_is_valid() -> None:
    h = History()
    h.nemesis("partition-start")
    h.apply(0, "a", "info", attempt=1)
    h.apply(5, "a", "ok", 0, attempt=2)
    h.read_ledger(9, ["a"])
    result = check(h.events)
    assert result.valid is True, result.details
    assert result.details["retried_keys"] == 1


def test_unacknowledged_key_may_be_applied_once_or_not_at_all() -> None:
    h = History()
    h.apply(0, "a", "info")
    h.apply(1, "b", "info")
    h.read_ledger(9, ["b"])
    assert check(h.events).valid is True


def test_retry_applied_twice_is_reported_as_duplicated_with_its_operations() -> None:
    h = History()
    first = h.apply(0, "a", "info", attempt=1)
    second = h.apply(5, "a", "ok", 1, attempt=2)
    h.read_ledger(9, ["a", "a"])
    result = check(h.events)
    assert result.valid is False
    assert result.details["duplicated_count"] == 1
    duplicate = result.details["duplicated"][0]
    assert duplicate["key"] == "a" and duplicate["times"] == 2
    assert duplicate["ops"] == [first, second] and duplicate["ledger_positions"] == [0, 1]


def test_never_acknowledged_key_applied_twice_is_duplicated() -> None:
    h = History()
    h.apply(0, "a", "info", attempt=1)
    h.apply(5, "a", "info", attempt=2)
    h.read_ledger(9, ["a", "a"])
    result = check(h.events)
    assert result.valid is False
    assert result.details["duplicated"][0]["acknowledged"] is False


def test_acknowledged_key_missing_from_ledger_is_lost() -> None:
    h = History()
    acked = h.apply(0, "a", "ok", 0)
    h.apply(1, "b", "ok", 0)
    h.read_ledger(9, ["b"])
    result = check(h.events)
    assert result.valid is False
    assert result.details["lost"] == [{"key": "a", "acknowledged_by": [acked], "ops": [acked]}]
    assert result.details["misplaced_count"] == 0


def test_retries_acknowledged_with_different_positions_are_mismatched() -> None:
    h = History()
    first = h.apply(0, "a", "ok", 3, attempt=1)
    second = h.apply(0, "a", "ok", 7, attempt=2)
    h.read_ledger(9, ["a"])
    result = check(h.events)
    assert result.valid is False
    assert result.details["mismatched"] == [
        {"key": "a", "results": [{"op": first, "value": 3}, {"op": second, "value": 7}]}]


def test_key_whose_every_attempt_failed_but_was_applied_is_reported() -> None:
    h = History()
    failed = h.apply(0, "a", "fail")
    h.read_ledger(9, ["a"])
    result = check(h.events)
    assert result.valid is False
    assert result.details["applied_after_fail"] == [{"key": "a", "ops": [failed]}]


def test_ledger_entry_no_client_sent_is_unexpected() -> None:
    h = History()
    h.apply(0, "a", "ok", 0)
    h.read_ledger(9, ["a", "ghost"])
    result = check(h.events)
    assert result.valid is False
    assert result.details["unexpected"][0]["key"] == "ghost"


def test_no_successful_ledger_read_is_unknown() -> None:
    h = History()
    h.apply(0, "a", "ok", 0)
    h.read_ledger(9, None, outcome="info")
    h.read_ledger(10, None, outcome="fail")
    result = check(h.events)
    assert result.valid == "unknown"
    assert "read-ledger" in result.details["error"]


def test_mismatch_is_invalid_even_without_a_ledger() -> None:
    h = History()
    h.apply(0, "a", "ok", 0, attempt=1)
    h.apply(0, "a", "ok", 1, attempt=2)
    assert check(h.events).valid is False


def test_the_last_successful_ledger_read_is_the_one_judged() -> None:
    h = History()
    h.apply(0, "a", "ok", 0)
    h.read_ledger(8, [])
    last = h.read_ledger(9, ["a"])
    result = check(h.events)
    assert result.valid is True, result.details
    assert result.details["ledger_read"] == last


def test_key_is_taken_from_the_value_when_the_invoke_field_is_missing() -> None:
    h = History()
    h.apply(0, "a", "ok", 0)
    del h.events[0]["idempotency_key"]
    h.read_ledger(9, ["a", "a"])
    assert check(h.events).details["duplicated_count"] == 1


def test_every_anomaly_is_counted_together() -> None:
    h = History()
    h.apply(0, "dup", "info")
    h.apply(5, "dup", "ok", 0, attempt=2)
    h.apply(1, "lost", "ok", 2)
    h.apply(2, "mis", "ok", 3)
    h.apply(2, "mis", "ok", 4, attempt=2)
    h.read_ledger(9, ["dup", "dup", "mis"])
    details = check(h.events).details
    assert (details["duplicated_count"], details["lost_count"], details["mismatched_count"]) == (1, 1, 1)


def test_malformed_history_is_rejected() -> None:
    events = [{"index": 0, "type": "invoke", "process": 0, "f": "apply", "idempotency_key": "a"},
              {"index": 1, "type": "invoke", "process": 0, "f": "apply", "idempotency_key": "b"}]
    with pytest.raises(HistoryError):
        check(events)


def test_attempt_that_never_completed_counts_as_info() -> None:
    h = History()
    h._add({"type": "invoke", "process": 0, "f": "apply", "idempotency_key": "a", "attempt": 1,
            "value": {"idempotency_key": "a", "payload": 1}})
    h.read_ledger(9, ["a"])
    result = check(h.events)
    assert result.valid is True, result.details
    assert result.details["keys_acknowledged"] == 0


def test_acknowledged_position_holding_another_key_is_misplaced() -> None:
    h = History()
    wrong = h.apply(0, "a", "ok", 1)
    h.apply(1, "b", "ok", 1)
    h.read_ledger(9, ["a", "b"])
    result = check(h.events)
    assert result.valid is False
    assert result.details["misplaced"] == [{"key": "a", "op": wrong, "position": 1, "holds": "b"}]


def test_ledger_of_plain_keys_as_raftkv_returns_it() -> None:
    h = History()
    h.apply(0, "a", "ok", 0)
    h.apply(1, "b", "info")
    h.read_ledger(9, [])
    h.events[-1]["value"] = ["a", "b", "b"]
    result = check(h.events)
    assert result.valid is False
    assert [d["key"] for d in result.details["duplicated"]] == ["b"]
