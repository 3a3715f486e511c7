"""The porcupine bindings: models, Jepsen's semantics, errors, timeouts, the visualization."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from faultbed import native as library
from faultbed.checkers.linearizable import check_history, check_operations
from faultbed.errors import FaultbedError, HistoryError, SetupError


class Recorder:
    """Builds faultbed history events with a fake clock, one tick per event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, type_: str, process: Any, f: str, key: Any = None, value: Any = None) -> None:
        event = {"index": len(self.events), "time": len(self.events) * 10, "type": type_, "process": process,
                 "f": f, "value": value}
        if key is not None:
            event["key"] = key
        self.events.append(event)

    def op(self, process: int, f: str, key: Any = None, value: Any = None, result: Any = None,
           type_: str = "ok") -> None:
        """A sequential operation: invoke then complete at once."""
        self.add("invoke", process, f, key, value)
        self.add(type_, process, f, key, value if result is None else result)


def test_register_read_of_a_value_never_written_is_invalid() -> None:
    h = Recorder()
    h.op(0, "write", value=1)
    h.op(0, "read", result=2)
    assert check_history(h.events, model="register").valid is False


def test_concurrent_write_may_be_seen_before_it_returns() -> None:
    h = Recorder()
    h.add("invoke", 0, "write", value=1)
    h.op(1, "read", result=1)
    h.add("ok", 0, "write", value=1)
    assert check_history(h.events, model="register").valid is True


def test_failed_write_did_not_happen_but_info_write_may_have() -> None:
    for type_, expected in (("fail", False), ("info", True)):
        h = Recorder()
        h.op(0, "write", value=1, type_=type_)
        h.op(1, "read", result=1)
        assert check_history(h.events, model="register").valid is expected, type_


def test_info_write_may_also_not_have_happened() -> None:
    h = Recorder()
    h.op(0, "write", value=1)
    h.op(1, "write", value=2, type_="info")
    h.op(2, "read", result=1)
    assert check_history(h.events, model="register").valid is True


def test_initial_value_is_what_unwritten_registers_read() -> None:
    h = Recorder()
    h.op(0, "read", result=0)
    assert check_history(h.events, model="cas-register").valid is False
    assert check_history(h.events, model="cas-register", initial=0).valid is True


def test_kv_partitions_by_key_and_names_the_illegal_ones() -> None:
    h = Recorder()
    h.op(0, "write", "a", 1)
    h.op(0, "write", "b", 2)
    h.op(0, "cas", "a", [1, 3])
    h.op(0, "read", "a", result=3)
    h.op(0, "read", "b", result=1)
    result = check_history(h.events, model="kv")
    assert result.valid is False
    assert result.details["illegal_keys"] == ["b"]
    assert result.details["partitions"] == 2


def test_kv_append_builds_strings_and_lists() -> None:
    h = Recorder()
    h.op(0, "append", "s", "x")
    h.op(0, "append", "s", "y")
    h.op(0, "read", "s", result="xy")
    h.op(0, "append", "l", 1)
    h.op(0, "append", "l", 2)
    h.op(0, "read", "l", result=[1, 2])
    assert check_history(h.events, model="kv").valid is True
    h.op(0, "read", "l", result=[2, 1])
    assert check_history(h.events, model="kv").valid is False


def test_mutex_cannot_be_acquired_twice() -> None:
    h = Recorder()
    h.op(0, "acquire")
    h.op(1, "acquire")
    assert check_history(h.events, model="mutex").valid is False
    h = Recorder()
    h.op(0, "acquire")
    h.op(0, "release")
    h.op(1, "acquire")
    h.op(2, "release", type_="info")
    assert check_history(h.events, model="mutex").valid is True


def test_fifo_queue_dequeues_in_order() -> None:
    h = Recorder()
    h.op(0, "enqueue", value=1)
    h.op(0, "enqueue", value=2)
    h.op(1, "dequeue", result=1)
    h.op(1, "dequeue", result=2)
    assert check_history(h.events, model="fifo-queue").valid is True
    h = Recorder()
    h.op(0, "enqueue", value=1)
    h.op(0, "enqueue", value=2)
    h.op(1, "dequeue", result=2)
    assert check_history(h.events, model="fifo-queue").valid is False


def test_multi_register_txn_reads_what_was_written_and_nil_reads_anything() -> None:
    h = Recorder()
    h.op(0, "txn", value=[["w", "x", 1], ["w", "y", 2]])
    h.op(1, "txn", value=[["r", "x", None], ["r", "y", None]], result=[["r", "x", 1], ["r", "y", None]])
    assert check_history(h.events, model="multi-register", initial={"x": 0, "y": 0}).valid is True
    h.op(1, "txn", value=[["r", "x", None]], result=[["r", "x", 0]])
    assert check_history(h.events, model="multi-register", initial={"x": 0, "y": 0}).valid is False


def test_op_the_model_does_not_know_names_the_event() -> None:
    h = Recorder()
    h.op(0, "write", value=1)
    h.op(0, "cas", value=[1, 2])
    with pytest.raises(HistoryError, match=r"^history:3: model register does not know operation \"cas\""):
        check_history(h.events, model="register")


def test_unknown_model_is_a_user_error() -> None:
    with pytest.raises(FaultbedError, match="unknown model 'nope'"):
        check_history([], model="nope")


def test_malformed_cas_value_names_the_event() -> None:
    h = Recorder()
    h.op(0, "cas", value=[1])
    with pytest.raises(HistoryError, match=r"history:1: cas value must be \[expected, new\]"):
        check_history(h.events, model="cas-register")


def test_a_history_where_nothing_completed_is_unknown_not_valid() -> None:
    pending = [{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 5, "index": 0}]
    for events in ([], pending):
        result = check_history(events, model="kv")
        assert result.valid == "unknown"
        assert result.details["reason"].startswith("no operation completed")


def test_a_pending_write_at_the_last_nanosecond_of_int64_is_not_an_anomaly() -> None:
    """`infinity = latest + 1` wrapped around to the start of time: a false INVALID (issue 17)."""
    end = 2**63 - 1
    events = [{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 0},
              {"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "time": 1},
              {"type": "invoke", "process": 1, "f": "write", "key": "a", "value": 2, "time": end}]
    assert check_history(events, model="kv").valid is True
    read = [{"type": "invoke", "process": 2, "f": "read", "key": "a", "value": None, "time": end - 2},
            {"type": "ok", "process": 2, "f": "read", "key": "a", "value": 2, "time": end - 1}]
    assert check_history(events[:2] + read + events[2:], model="kv").valid is False  # read 2 before it was written


def test_timeout_gives_unknown(corpus: Path) -> None:
    from faultbed.checkers.formats import load_history
    history = load_history(str(corpus / "porcupine/kv/c50-ok.txt"))
    result = check_operations(history.ops, "kv", "", timeout=0.001)
    assert result.valid == "unknown"
    assert result.details["cancelled_partitions"] > 0


def test_missing_library_says_run_make_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(library.LIBRARY_ENV, str(tmp_path / "nowhere.so"))
    with pytest.raises(SetupError, match="run `make setup`"):
        check_history([{"type": "invoke", "process": 0, "f": "read", "key": "a", "time": 0},
                       {"type": "ok", "process": 0, "f": "read", "key": "a", "value": None, "time": 1}], model="kv")


def visualization_data(path: Path) -> dict[str, Any]:
    match = re.search(r"const data = (\{.*\})\s*\n", path.read_text())
    assert match, f"no visualization data in {path}"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def partitioned_history() -> Recorder:
    h = Recorder()
    h.op(0, "write", "k1", 1)
    h.add("info", "nemesis", "start-partition", value={"n1": ["n2", "n3"]})
    h.op(1, "read", "k1", result=2)
    h.add("info", "nemesis", "stop-partition")
    return h


def test_invalid_history_draws_porcupine_page_with_nemesis_annotations(tmp_path: Path) -> None:
    html = tmp_path / "run" / "linearizability.html"
    result = check_history(partitioned_history().events, model="kv", visualize=str(html))
    assert result.valid is False
    assert result.details["visualization"] == str(html)
    data = visualization_data(html)
    (annotation,) = data["Annotations"]
    assert annotation["Tag"] == "nemesis partition"
    assert "n2" in annotation["Details"]
    assert annotation["Start"] < annotation["End"]
    described = [op["Description"] for p in data["Partitions"] for op in p["History"]]
    assert described == ['write(k1, 1)', 'read(k1) -> 2']


def test_valid_history_is_drawn_only_when_asked(tmp_path: Path) -> None:
    h = Recorder()
    h.op(0, "write", "k1", 1)
    html = tmp_path / "valid.html"
    assert check_history(h.events, visualize=str(html)).details["visualization"] is None
    assert not html.exists()
    check_history(h.events, visualize=str(html), always_visualize=True)
    assert visualization_data(html)["Partitions"]


def test_fifo_queue_starts_from_the_initial_list_and_an_unknown_dequeue_may_take_the_head() -> None:
    h = Recorder()
    h.op(0, "dequeue", type_="info")
    h.op(1, "dequeue", result=2)
    assert check_history(h.events, model="fifo-queue", initial=[1, 2]).valid is True
    assert check_history(h.events, model="fifo-queue", initial=[1, 3]).valid is False


def test_multi_register_micro_op_it_does_not_know_names_the_event() -> None:
    h = Recorder()
    h.op(0, "txn", value=[["w", "x", 1]])
    h.op(0, "txn", value=[["append", "x", 1]])
    with pytest.raises(HistoryError, match=r"history:3: multi-register does not know micro-op \"append\""):
        check_history(h.events, model="multi-register")


def test_a_picture_that_cannot_be_written_does_not_lose_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the page's directory should be")
    for unwritable in (tmp_path / "taken" / "x.html", tmp_path):
        result = check_history(partitioned_history().events, visualize=str(unwritable))
        assert result.valid is False
        assert result.details["visualization"] is None
        assert "cannot write the visualization" in result.details["visualization_error"]
