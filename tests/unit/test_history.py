"""The history format: written per line, read back, paired; a torn tail is still a history."""

import json
import threading

import pytest

from faultbed.errors import HistoryError
from faultbed.history import HistoryWriter, nemesis_events, pair_operations, read_history


def test_writer_stamps_increasing_index_and_time_and_flushes_each_line(tmp_path):
    path = str(tmp_path / "history.jsonl")
    writer = HistoryWriter(path)
    inv = writer.invoke(0, "write", "k1", 3)
    # flushed per line: readable before close
    assert json.loads(open(path).read().splitlines()[0])["f"] == "write"
    writer.complete(inv, "ok", 3, node="n1")
    writer.nemesis("start-partition", {"n1": ["n2"]})
    writer.close()
    events = read_history(path)
    assert [e["index"] for e in events] == [0, 1, 2]
    assert events[0]["time"] <= events[1]["time"] <= events[2]["time"]
    assert events[1] == {**events[1], "type": "ok", "process": 0, "key": "k1", "value": 3, "node": "n1"}
    assert nemesis_events(events)[0]["process"] == "nemesis"


def test_writer_is_safe_across_threads(tmp_path):
    path = str(tmp_path / "history.jsonl")
    with HistoryWriter(path) as writer:
        def work(p):
            for _ in range(500):
                writer.complete(writer.invoke(p, "read", "k"), "ok", None)
        threads = [threading.Thread(target=work, args=(p,)) for p in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    events = read_history(path)
    assert [e["index"] for e in events] == list(range(8000))
    assert len(pair_operations(events)) == 4000


def test_torn_last_line_is_ignored_but_torn_middle_line_is_an_error(tmp_path):
    path = tmp_path / "history.jsonl"
    good = json.dumps({"index": 0, "time": 1, "type": "invoke", "process": 0, "f": "read", "key": "k"})
    path.write_text(good + "\n" + '{"index": 1, "ti')
    assert len(read_history(str(path))) == 1
    path.write_text(good + "\n" + '{"index": 1, "ti\n' + good + "\n")
    with pytest.raises(HistoryError, match=r"history.jsonl:2: not JSON"):
        read_history(str(path))


def test_bad_event_type_names_file_and_line(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"type": "ok", "process": 1, "f": "read"}\n{"type": "done", "process": 1, "f": "read"}\n')
    with pytest.raises(HistoryError, match=r"h.jsonl:2: type must be one of"):
        read_history(str(path))


def test_pairing_retires_process_after_info_and_keeps_open_ops_as_info():
    events = [
        {"index": 0, "type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1},
        {"index": 1, "type": "invoke", "process": 1, "f": "read", "key": "a", "value": None},
        {"index": 2, "type": "info", "process": 0, "f": "write", "key": "a", "value": 1},
        {"index": 3, "type": "info", "process": "nemesis", "f": "start", "value": None},
        {"index": 4, "type": "ok", "process": 1, "f": "read", "key": "a", "value": 1},
        {"index": 5, "type": "invoke", "process": 1, "f": "write", "key": "a", "value": 2},
    ]
    ops = pair_operations(events)
    assert [(o.process, o.f, o.type) for o in ops] == [(0, "write", "info"), (1, "read", "ok"), (1, "write", "info")]
    assert ops[1].value == 1
    assert ops[2].completion is None
    with pytest.raises(HistoryError, match="retired"):
        pair_operations(events + [{"index": 6, "type": "invoke", "process": 0, "f": "read", "key": "a"}])
    with pytest.raises(HistoryError, match="no open invocation"):
        pair_operations([{"index": 0, "type": "ok", "process": 3, "f": "read"}])
    with pytest.raises(HistoryError, match="previous operation is open"):
        pair_operations(events[:2] + [{"index": 9, "type": "invoke", "process": 1, "f": "read"}])


def test_clock_starts_with_the_main_phase_and_only_before_any_event(tmp_path):
    writer = HistoryWriter(str(tmp_path / "h.jsonl"))
    writer.start_clock()
    event = writer.invoke(0, "read", "k")
    assert 0 <= event["time"] < 1_000_000_000
    with pytest.raises(HistoryError, match="clock starts before the first event"):
        writer.start_clock()
    writer.close()


def test_read_events_share_one_copy_of_field_names_and_short_texts(tmp_path) -> None:
    from faultbed.history import HistoryWriter, read_history

    path = str(tmp_path / "history.jsonl")
    with HistoryWriter(path) as history:
        for process in range(2):
            history.complete(history.invoke(process, "write", "k1", 1), "fail", error="cas-mismatch")
    events = read_history(path)
    first, second = events[0], events[2]
    assert [k for k in first if k == "process"][0] is [k for k in second if k == "process"][0]
    assert first["key"] is second["key"] and events[1]["error"] is events[3]["error"]
    assert first == {"type": "invoke", "process": 0, "f": "write", "key": "k1", "value": 1,
                     "index": 0, "time": first["time"]}
