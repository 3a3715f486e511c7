"""First-anomaly times of the idempotency and queue checkers: the operation whose completion made
the first anomaly a fact, in ms since the first client invocation (as linearizable's)."""

from __future__ import annotations

from faultbed.checkers import idempotency, queue
from tests.checkers.test_idempotency import History as LedgerHistory
from tests.checkers.test_queue import History as QueueHistory

NS_PER_EVENT = 1000  # the builders stamp event i at i * 1000 ns


def ms(event_index: int, origin_index: int = 0) -> float:
    return round((event_index - origin_index) * NS_PER_EVENT / 1e6, 3)


def test_a_duplicate_becomes_a_fact_when_the_second_attempt_that_may_have_applied_completes() -> None:
    h = LedgerHistory()
    h.nemesis("start-kill")             # event 0: nemesis events do not move the origin
    h.apply(0, "a", "ok", 0)            # events 1, 2: the first client invocation is the origin
    h.apply(1, "b", "info", attempt=1)  # 3, 4: may have applied
    h.apply(11, "b", "fail", attempt=2)  # 5, 6: certainly did not
    second = h.apply(21, "b", "ok", 1, attempt=3)  # 7, 8: the second that may have applied
    h.read_ledger(99, ["a", "b", "b"])
    result = idempotency.check(h.events)
    assert result.valid is False
    first = result.details["first_anomaly"]
    assert (first["kind"], first["about"], first["op"]) == ("duplicated", "b", second)
    assert result.details["first_anomaly_ms"] == first["time_ms"] == ms(second + 1, origin_index=1)
    assert f"first anomaly at {first['time_ms'] / 1000:.2f} s" in result.summary


def test_the_earliest_of_several_anomalies_is_the_first() -> None:
    h = LedgerHistory()
    h.apply(0, "a", "info", attempt=1)
    h.apply(10, "a", "ok", 0, attempt=2)   # the duplicate of a completes at event 3
    lost = h.apply(1, "c", "ok", 1)        # the acknowledgement of c, lost later, completes at event 5
    h.read_ledger(99, ["a", "a"])
    details = idempotency.check(h.events).details
    assert (details["duplicated_count"], details["lost_count"]) == (1, 1)
    assert details["first_anomaly"]["kind"] == "duplicated" and details["first_anomaly_ms"] == ms(3)
    assert lost == 4


def test_a_valid_ledger_has_no_first_anomaly() -> None:
    h = LedgerHistory()
    h.apply(0, "a", "ok", 0)
    h.read_ledger(9, ["a"])
    result = idempotency.check(h.events)
    assert result.valid is True and "first_anomaly" not in result.details
    assert "first anomaly" not in result.summary


def test_a_queue_duplicate_becomes_a_fact_at_its_second_successful_ack() -> None:
    h = QueueHistory()
    h.publish(0, "0-0")        # events 0, 1
    h.deliver(5, "0-0")        # consume 2, 3; ack 4, 5
    h.consume(7, "0-0")        # 6, 7
    second_ack = h.ack(7, "0-0")  # 8, 9
    h.consume(5, None)
    h.drained()
    result = queue.check(h.events)
    first = result.details["first_anomaly"]
    assert result.valid is False
    assert (first["kind"], first["about"], first["op"], first["f"]) == ("duplicated", "0-0", second_ack, "ack")
    assert result.details["first_anomaly_ms"] == ms(second_ack + 1)


def test_duplicates_an_at_least_once_queue_allows_are_no_anomaly() -> None:
    h = QueueHistory()
    h.publish(0, "0-0")
    h.deliver(5, "0-0")
    h.deliver(7, "0-0")
    h.consume(5, None)
    h.drained()
    result = queue.check(h.events, duplicates_allowed=True)
    assert result.valid is True and "first_anomaly" not in result.details


def test_a_lost_message_dates_from_its_acknowledged_publish() -> None:
    h = QueueHistory()
    h.publish(0, "0-0")
    published = h.publish(0, "0-1")   # acknowledged at event 3, never delivered
    h.deliver(5, "0-0")
    h.consume(5, None)
    h.drained()
    details = queue.check(h.events).details
    assert details["lost_count"] == 1
    assert (details["first_anomaly"]["kind"], details["first_anomaly"]["op"]) == ("lost", published)
    assert details["first_anomaly_ms"] == ms(published + 1)
