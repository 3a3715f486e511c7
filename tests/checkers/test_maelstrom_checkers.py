"""The Maelstrom checkers on hand-written histories: one valid and one violating history per invariant."""

from __future__ import annotations

import pytest

from faultbed import plugins
from faultbed.checkers.maelstrom import counter, echo, sets, unique_ids
from tests.checkers.maelstrom_history import History


def test_echo_returning_what_was_sent_is_valid() -> None:
    h = History()
    h.op(0, "echo", "hello")
    h.op(1, "echo", "again", type_="info")
    result = echo.check(h.events)
    assert result.valid is True, result.details
    assert result.details["acknowledged"] == 1


def test_echo_returning_something_else_is_invalid_and_named() -> None:
    h = History()
    h.op(0, "echo", "hello")
    bad = h.op(1, "echo", "abc", result="abd", node="n2")
    result = echo.check(h.events)
    assert result.valid is False
    assert result.details["mismatched"] == [{"op": bad, "node": "n2", "sent": "abc", "received": "abd"}]


def test_unique_ids_all_distinct_is_valid_even_when_json_types_differ() -> None:
    h = History()
    for process, generated in enumerate([1, "1", 1.5, [1], {"a": 1}, "n1-7"]):
        h.op(process, "generate", None, result=generated)
    h.op(9, "generate", None, type_="info")
    result = unique_ids.check(h.events)
    assert result.valid is True, result.details
    assert result.details["acknowledged"] == 6


def test_unique_ids_duplicate_named_with_its_operations_and_nodes() -> None:
    h = History()
    first = h.op(0, "generate", None, result={"node": "n1", "seq": 3}, node="n1")
    h.op(1, "generate", None, result="other", node="n2")
    second = h.op(2, "generate", None, result={"seq": 3, "node": "n1"}, node="n3")  # same id, keys reordered
    result = unique_ids.check(h.events)
    assert result.valid is False
    [dup] = result.details["duplicated"]
    assert dup["ops"] == [first, second] and dup["nodes"] == ["n1", "n3"]
    assert "duplicated 1 ids" in result.summary
    assert result.details["first_anomaly_ms"] is not None


def test_unique_ids_ok_without_an_id_is_invalid() -> None:
    h = History()
    h.op(0, "generate", None, result=None)
    result = unique_ids.check(h.events)
    assert result.valid is False and result.details["missing_id_count"] == 1


def broadcast_run(final_n2: list[int], extra_read: list[int] | None = None) -> History:
    """Values 1 and 2 acknowledged, 3 indefinite, 4 failed; final reads from n1 and n2."""
    h = History()
    h.op(0, "broadcast", 1)
    h.op(1, "broadcast", 2, node="n2")
    h.nemesis("start-partition")
    h.op(2, "broadcast", 3, type_="info")
    h.op(3, "broadcast", 4, type_="fail")
    h.op(0, "read", None, result=[1], node="n2")  # stale: 2 was acknowledged before this read began
    if extra_read is not None:
        h.op(0, "read", None, result=extra_read)
    h.nemesis("stop-partition")
    h.final_read("n1", [1, 2, 3])
    h.final_read("n2", final_n2)
    return h


def test_broadcast_every_acknowledged_value_everywhere_is_valid_with_stale_reads_reported() -> None:
    result = sets.check(broadcast_run([1, 2]).events, "broadcast", "broadcast")
    assert result.valid is True, result.details
    assert result.details["stale_read_count"] == 1
    assert result.details["stale_reads"][0]["missing"] == [2]
    assert result.details["recovered"] == 1  # the indefinite 3 made it
    assert result.details["converge_ms_max"] > 0


def test_broadcast_value_missing_on_one_node_is_unconverged() -> None:
    result = sets.check(broadcast_run([1]).events, "broadcast", "broadcast")
    assert result.valid is False
    [item] = result.details["unconverged"]
    assert item["value"] == 2 and item["missing_from"] == ["n2"]
    assert result.details["lost_count"] == 0


def test_broadcast_value_in_no_final_read_is_lost() -> None:
    h = History()
    h.op(0, "broadcast", 7)
    h.final_read("n1", [])
    h.final_read("n2", [])
    result = sets.check(h.events, "broadcast", "broadcast")
    assert result.valid is False and result.details["lost"][0]["value"] == 7
    assert "lost 1" in result.summary


def test_broadcast_value_never_broadcast_is_unexpected() -> None:
    result = sets.check(broadcast_run([1, 2], extra_read=[1, 99]).events, "broadcast", "broadcast")
    assert result.valid is False
    assert [u["value"] for u in result.details["unexpected"]] == ["99"]


def test_broadcast_failed_value_that_appears_was_applied_after_fail() -> None:
    result = sets.check(broadcast_run([1, 2, 4]).events, "broadcast", "broadcast")
    assert result.valid is False and result.details["applied_after_fail"][0]["value"] == 4


def test_broadcast_without_final_reads_is_unknown() -> None:
    h = History()
    h.op(0, "broadcast", 1)
    h.final_read("n1", None, type_="fail")
    result = sets.check(h.events, "broadcast", "broadcast")
    assert result.valid == "unknown" and "final read" in result.summary


def test_broadcast_read_returning_no_list_is_malformed() -> None:
    h = History()
    h.op(0, "broadcast", 1)
    h.final_read("n1", {"messages": [1]})
    result = sets.check(h.events, "broadcast", "broadcast")
    assert result.valid is False and result.details["malformed_reads_count"] == 1


def test_g_set_every_acknowledged_add_present_is_valid_and_lost_add_is_invalid() -> None:
    h = History()
    h.op(0, "add", "a")
    h.op(1, "add", "b")
    h.final_read("n1", ["a", "b"])
    h.final_read("n2", ["b", "a"])
    assert sets.check(h.events, "g-set", "add").valid is True
    h.final_read("n3", ["a"])
    lost = sets.check(h.events, "g-set", "add")
    assert lost.valid is False and lost.details["unconverged"][0]["missing_from"] == ["n3"]


def counter_run(final: int, midway: int = 3) -> History:
    """pn-counter: ok +5, ok -2, info +4, info -1, failed +100; one read during the run."""
    h = History()
    h.op(0, "add", 5)
    h.op(1, "add", -2)
    h.op(2, "add", 4, type_="info")
    h.op(3, "add", -1, type_="info")
    h.op(4, "add", 100, type_="fail")
    h.op(5, "read", None, result=midway)
    h.final_read("n1", final)
    h.final_read("n2", final, attempt=1)
    return h


@pytest.mark.parametrize("final", [2, 3, 6, 7])
def test_counter_final_reads_within_the_bounds_of_indefinite_adds_are_valid(final: int) -> None:
    result = counter.check(counter_run(final).events)
    assert result.valid is True, result.details
    assert (result.details["lower"], result.details["upper"]) == (2, 7)


@pytest.mark.parametrize("final", [1, 8, 107])
def test_counter_final_read_outside_the_bounds_is_invalid(final: int) -> None:
    result = counter.check(counter_run(final).events)
    assert result.valid is False
    [item] = result.details["out_of_bounds"][:1]
    assert item["value"] == final and (item["lower"], item["upper"]) == (2, 7)
    assert "outside [2, 7]" in result.summary


def test_counter_read_seeing_more_than_was_ever_added_is_impossible() -> None:
    result = counter.check(counter_run(7, midway=10).events)  # 5 + 4 at most by then: a retry counted twice
    assert result.valid is False
    assert result.details["impossible_reads"][0]["upper"] == 9
    assert result.details["first_anomaly_ms"] is not None


def test_counter_read_counts_only_adds_invoked_before_it_ended() -> None:
    h = History()
    read = h.invoke(1, "read")
    h.op(0, "add", 3)
    h.complete(read, "ok", 3)  # the add began before the read ended: it may have seen it
    late = h.invoke(1, "read")
    h.complete(late, "ok", 4)
    h.final_read("n1", 3)
    result = counter.check(h.events)
    assert result.valid is False and [r["value"] for r in result.details["impossible_reads"]] == [4]


def test_counter_without_final_read_is_unknown_and_non_integer_read_is_malformed() -> None:
    h = History()
    h.op(0, "add", 1)
    h.final_read("n1", None, type_="info")
    assert counter.check(h.events).valid == "unknown"
    h.final_read("n2", "1", attempt=1)
    result = counter.check(h.events)
    assert result.valid is False and result.details["malformed_reads_count"] == 1


@pytest.mark.parametrize("name", ["echo", "unique-ids", "broadcast", "g-set", "counter"])
def test_maelstrom_checkers_are_registered_entry_points(name: str) -> None:
    checker = plugins.load("checkers", name)
    assert checker.name == name and checker.description
