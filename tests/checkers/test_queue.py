"""The queue checker on hand-written histories: one test per anomaly it reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faultbed.checkers.queue import check

Q = "q0"


class History:
    """Builds a queue history; each method records one operation and returns its invoke index."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _add(self, event: dict[str, Any]) -> int:
        event["index"] = len(self.events)
        event["time"] = event["index"] * 1000
        self.events.append(event)
        return event["index"]

    def _op(self, process: int, f: str, invoke_value: Any, outcome: str, result: Any, **extra: Any) -> int:
        index = self._add({"type": "invoke", "process": process, "f": f, "key": extra.pop("queue", Q),
                           "value": invoke_value, **extra})
        self._add({"type": outcome, "process": process, "f": f, "key": self.events[index]["key"],
                   "value": result if outcome == "ok" else None})
        return index

    def publish(self, process: int, msg_id: str, outcome: str = "ok", attempt: int = 1, **extra: Any) -> int:
        return self._op(process, "publish", {"msg_id": msg_id, "body": f"b-{msg_id}"}, outcome,
                        {"msg_id": msg_id}, msg_id=msg_id, attempt=attempt, **extra)

    def consume(self, process: int, msg_id: str | None, outcome: str = "ok", deliveries: int | None = None,
                **extra: Any) -> int:
        result = None if msg_id is None else {"msg_id": msg_id, "body": f"b-{msg_id}", "lease": 1}
        if result is not None and deliveries is not None:
            result["deliveries"] = deliveries
        return self._op(process, "consume", None, outcome, result, **extra)

    def ack(self, process: int, msg_id: str, outcome: str = "ok", **extra: Any) -> int:
        return self._op(process, "ack", {"msg_id": msg_id, "lease": 1}, outcome, None, msg_id=msg_id, **extra)

    def deliver(self, process: int, msg_id: str) -> None:
        self.consume(process, msg_id)
        self.ack(process, msg_id)

    def drained(self, process: int = 99, ready: int = 0, leased: int = 0, queue: str = Q) -> int:
        return self._op(process, "depth", None, "ok", {"ready": ready, "leased": leased},
                        final=True, queue=queue)

    def nemesis(self, f: str) -> None:
        self._add({"type": "info", "process": "nemesis", "f": f, "value": None})


def test_every_published_message_delivered_once_is_valid() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    h.deliver(5, "0-0")
    h.deliver(5, "0-1")
    h.consume(5, None)
    h.drained()
    result = check(h.events)
    assert result.valid is True, result.details
    assert (result.details["acknowledged_publishes"], result.details["delivered"]) == (2, 2)


def test_redelivery_after_a_failed_ack_is_not_a_duplicate() -> None:
    h = History()
    h.publish(0, "0-0")
    h.consume(5, "0-0")
    h.ack(5, "0-0", outcome="fail")
    h.deliver(6, "0-0")
    h.drained()
    result = check(h.events)
    assert result.valid is True, result.details
    assert result.details["redelivered"] == 1


def test_acknowledged_message_never_acked_after_drain_is_lost() -> None:
    h = History()
    published = h.publish(0, "0-0")
    h.consume(5, None)
    h.drained()
    result = check(h.events)
    assert result.valid is False
    assert result.details["lost"] == [{"queue": Q, "msg_id": "0-0", "published_by": published, "deliveries": []}]


def test_consumed_but_never_acked_after_drain_is_lost() -> None:
    h = History()
    h.publish(0, "0-0")
    delivery = h.consume(5, "0-0")
    h.drained()
    result = check(h.events)
    assert result.valid is False
    assert result.details["lost"][0]["deliveries"] == [delivery]


def test_lost_candidates_without_a_finished_drain_are_unknown() -> None:
    h = History()
    h.publish(0, "0-0")
    h.drained(ready=1)
    result = check(h.events)
    assert result.valid == "unknown"
    assert result.details["unconsumed_count"] == 1 and result.details["lost_count"] == 0


def test_message_whose_ack_outcome_is_unknown_is_not_lost() -> None:
    h = History()
    h.publish(0, "0-0")
    h.consume(5, "0-0")
    h.ack(5, "0-0", outcome="info")
    h.drained()
    assert check(h.events).valid is True


def test_unacknowledged_publish_may_be_delivered_or_not() -> None:
    h = History()
    h.publish(0, "0-0", outcome="info")
    h.publish(1, "1-0", outcome="info")
    h.deliver(5, "1-0")
    h.drained()
    result = check(h.events)
    assert result.valid is True, result.details
    assert [item["msg_id"] for item in result.details["recovered"]] == ["1-0"]


def test_retried_publish_delivered_once_is_valid() -> None:
    h = History()
    h.publish(0, "0-0", outcome="info", attempt=1)
    h.publish(4, "0-0", attempt=2)
    h.deliver(5, "0-0")
    h.drained()
    assert check(h.events).valid is True


def test_message_acked_twice_is_duplicated() -> None:
    h = History()
    h.publish(0, "0-0", outcome="info", attempt=1)
    h.publish(4, "0-0", attempt=2)
    h.consume(5, "0-0")
    first = h.ack(5, "0-0")
    h.consume(6, "0-0")
    second = h.ack(6, "0-0")
    h.drained()
    result = check(h.events)
    assert result.valid is False
    assert result.details["duplicated"][0]["acked_by"] == [first, second]


def test_consumed_message_nobody_published_is_unexpected() -> None:
    h = History()
    delivery = h.consume(5, "ghost-1")
    h.drained()
    result = check(h.events)
    assert result.valid is False
    assert result.details["unexpected"] == [{"queue": Q, "msg_id": "ghost-1", "deliveries": [delivery]}]


def test_same_msg_id_in_another_queue_is_a_different_message() -> None:
    h = History()
    h.publish(0, "0-0", queue="a")
    h.consume(5, "0-0", queue="b")
    result = check(h.events)
    assert result.details["unexpected_count"] == 1


def test_later_message_handed_out_while_earlier_was_ready_is_reordered() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    h.deliver(5, "0-1")
    h.deliver(5, "0-0")
    h.drained()
    result = check(h.events)
    assert result.valid is False
    reordered = result.details["reordered"][0]
    assert (reordered["producer"], reordered["earlier"], reordered["later"]) == ("0", "0-0", "0-1")


def test_concurrent_consumes_are_not_reordered() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    # consumer 5 asks first, consumer 6 overtakes it: the two consumes overlap in time
    h._add({"type": "invoke", "process": 5, "f": "consume", "key": Q, "value": None})
    h.consume(6, "0-1")
    h._add({"type": "ok", "process": 5, "f": "consume", "key": Q,
            "value": {"msg_id": "0-0", "body": "b-0-0", "lease": 2}})
    h.ack(6, "0-1")
    h.ack(5, "0-0")
    h.drained()
    assert check(h.events).valid is True


def test_a_consume_with_lost_answer_may_have_leased_the_earlier_message() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    h.nemesis("partition-start")
    h.consume(7, None, outcome="info")
    h.deliver(5, "0-1")
    h.deliver(5, "0-0")
    h.drained()
    assert check(h.events).valid is True


def test_a_lost_consume_invoked_before_the_publish_may_still_have_leased_it() -> None:
    h = History()
    h.consume(7, None, outcome="info")
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    h.deliver(5, "0-1")
    h.deliver(5, "0-0")
    h.drained()
    assert check(h.events).valid is True


def test_first_delivery_by_the_broker_count_is_reordered_despite_a_lost_consume() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    h.consume(7, None, outcome="info")
    h.deliver(5, "0-1")
    h.consume(5, "0-0", deliveries=1)
    h.ack(5, "0-0")
    h.drained()
    result = check(h.events)
    assert result.valid is False
    assert result.details["reordered_count"] == 1


def test_redelivery_by_the_broker_count_with_a_lost_consume_is_not_reordered() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    h.consume(7, None, outcome="info")
    h.deliver(5, "0-1")
    h.consume(5, "0-0", deliveries=2)
    h.ack(5, "0-0")
    h.drained()
    assert check(h.events).valid is True


def test_producers_are_ordered_independently() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(1, "1-0")
    h.deliver(5, "1-0")
    h.deliver(5, "0-0")
    h.drained()
    assert check(h.events).valid is True


def test_message_published_after_the_later_one_is_not_a_reordering() -> None:
    h = History()
    h.publish(0, "0-1", producer="p")
    h.publish(0, "0-0", producer="p")
    h.deliver(5, "0-1")
    h.deliver(5, "0-0")
    h.drained()
    assert check(h.events).valid is True


def test_every_anomaly_is_counted_together() -> None:
    h = History()
    h.publish(0, "0-0")
    h.publish(0, "0-1")
    h.publish(0, "0-2")
    h.deliver(5, "0-2")
    h.deliver(5, "0-1")
    h.deliver(6, "0-1")
    h.deliver(6, "ghost")
    h.drained()
    details = check(h.events).details
    counts = {name: details[f"{name}_count"] for name in ("lost", "duplicated", "unexpected", "reordered")}
    assert counts == {"lost": 1, "duplicated": 1, "unexpected": 1, "reordered": 1}


def test_operations_that_never_completed_count_as_info() -> None:
    h = History()
    h._add({"type": "invoke", "process": 0, "f": "publish", "key": Q, "msg_id": "0-0",
            "value": {"msg_id": "0-0", "body": 1}})
    h.consume(5, "0-0")
    h._add({"type": "invoke", "process": 5, "f": "ack", "key": Q, "msg_id": "0-0",
            "value": {"msg_id": "0-0", "lease": 1}})
    h.drained(process=6)
    result = check(h.events)
    assert result.valid is True, result.details
    assert result.details["recovered_count"] == 1



def test_duplicates_are_listed_but_allowed_for_an_at_least_once_queue() -> None:
    h = History()
    h.publish(0, "0-0", outcome="info", attempt=1)
    h.publish(4, "0-0", attempt=2)
    h.consume(5, "0-0")
    h.ack(5, "0-0")
    h.consume(6, "0-0")
    h.ack(6, "0-0")
    h.drained()
    strict, relaxed = check(h.events), check(h.events, duplicates_allowed=True)
    assert strict.valid is False and strict.details["duplicated_count"] == 1
    assert relaxed.valid is True and relaxed.details["duplicated_count"] == 1
    assert relaxed.details["duplicates_allowed"] is True


def test_the_benchs_long_queue_history_is_valid_with_its_retries_and_redeliveries(tmp_path: Path) -> None:
    """bench/queue_check.py's generated history, read as a run's check reads it (HistoryFile): every
    message delivered once, a failed publish retried and a failed ack redelivered are no anomaly."""
    from bench.queue_check import write_history
    from faultbed.history import HistoryFile

    path = tmp_path / "history.jsonl"
    write_history(path, 2000)
    with HistoryFile(str(path)) as events:
        result = check(events)
    assert result.valid is True, result.summary
    assert result.details["delivered"] == result.details["acknowledged_publishes"] == 2000
    assert result.details["published_attempts"] > 2000 and result.details["redelivered"] > 0
    assert result.details["drained_queues"] == ["jobs"]
