"""Importers: faultbed JSONL, Jepsen EDN, porcupine's etcd and kv logs; nemesis annotations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faultbed.checkers import formats
from faultbed.checkers.edn import read_edn
from faultbed.checkers.formats import detect_format, load_history, nemesis_annotations, rows_from_events
from faultbed.checkers.linearizable import check_imported
from faultbed.errors import FaultbedError, HistoryError
from faultbed.history import HistoryWriter


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def faultbed_history(path: Path) -> str:
    with HistoryWriter(str(path)) as history:
        w = history.invoke(0, "write", "k1", 3)
        r = history.invoke(1, "read", "k1")
        history.complete(w, "ok", 3, node="n1")
        history.nemesis("start-partition", {"n1": ["n2"]})
        c = history.invoke(0, "cas", "k1", [3, 4])
        history.complete(r, "ok", 3)
        history.complete(c, "fail", [3, 4], error="mismatch")
        lost = history.invoke(2, "write", "k2", 1)
        history.complete(lost, "info", error="timeout")
        history.invoke(3, "cas", "k1", [3, 5])  # never completes: the run crashed
        history.nemesis("stop-partition")
    return str(path)


def test_faultbed_ok_ops_keep_times_fail_ops_vanish_info_ops_stay_open(tmp_path: Path) -> None:
    history = load_history(faultbed_history(tmp_path / "history.jsonl"))
    assert history.format == "faultbed"
    rows = [row[:7] for row in history.ops]
    (w, r, lost, crashed) = rows
    assert w[3:] == ("write", "k1", 3, 3) and w[2] is not None
    assert r[3:] == ("read", "k1", None, 3)
    assert lost[2] is None and lost[3:6] == ("write", "k2", 1)
    assert crashed[2] is None and crashed[3:6] == ("cas", "k1", [3, 5])
    assert history.lines == [1, 2, 8, 10]  # the invocations' lines
    assert "node n1" in history.ops[0][7]


def test_faultbed_ok_cas_is_a_cas_that_swapped() -> None:
    events = [{"index": 0, "time": 1, "type": "invoke", "process": 0, "f": "cas", "key": "k", "value": [1, 2]},
              {"index": 1, "time": 2, "type": "ok", "process": 0, "f": "cas", "key": "k", "value": [1, 2]}]
    rows, _, _ = rows_from_events(events)
    assert rows[0][6] is True


def test_faultbed_nemesis_events_become_one_annotation_per_fault(tmp_path: Path) -> None:
    history = load_history(faultbed_history(tmp_path / "history.jsonl"))
    (partition,) = history.annotations
    assert partition["tag"] == "nemesis partition"
    assert partition["start"] < partition["end"]
    assert "n1" in partition["details"]


def test_faultbed_model_comes_from_the_spec_next_to_the_history(tmp_path: Path) -> None:
    path = faultbed_history(tmp_path / "history.jsonl")
    assert load_history(path).model is None
    (tmp_path / "spec.json").write_text(json.dumps({"workload": "register"}))
    assert load_history(path).model == "kv"
    (tmp_path / "spec.json").write_text(json.dumps({"workload": "idempotency"}))
    history = load_history(path)
    assert (history.workload, history.model) == ("idempotency", None)
    with pytest.raises(FaultbedError, match="workload 'idempotency' has no linearizability model"):
        check_imported(history)
    assert check_imported(history, "kv").valid is True


@pytest.mark.parametrize("text, expected", [
    ('{"type": "invoke", "process": 0, "f": "read"}\n', "faultbed"),
    ("INFO  jepsen.util - 3\t:invoke\t:read\tnil\n", "porcupine-etcd"),
    ('{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n', "porcupine-kv"),
    ("; a comment\n[{:type :invoke, :f :read, :process 0}]", "edn"),
    ("({:type :invoke, :f :read, :process 0})", "edn"),
    ("{:index 0, :time 5, :type :invoke, :process 0, :f :read, :value nil}\n", "edn"),
])
def test_format_is_detected_from_the_content(text: str, expected: str) -> None:
    assert detect_format(text, "some-file") == expected


def _whole_text_rule(text: str, path: str) -> str | BaseException:
    """detect_format's rule applied to every line of the text (what the head-first reading must match)."""
    try:
        return formats._first_form(text.splitlines(), path) or ("porcupine-etcd" if path.endswith(".log")
                                                               else "faultbed")
    except HistoryError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(blank=st.text(alphabet=" \t\r\n;\x0c\x85\u2028", max_size=40),
       first=st.sampled_from(["{\"type\": \"invoke\"}", "{:process 0, :type :invoke}", "[{:f :read}]",
                              "INFO  jepsen.util - 0\t:invoke\t:read\tnil", "hello", "{:index 0 :f :read}"]),
       before_head_end=st.integers(min_value=-20, max_value=60), pad=st.integers(min_value=0, max_value=100),
       path=st.sampled_from(["h.jsonl", "h.log"]))
def test_the_head_decides_as_every_line_does(blank: str, first: str, before_head_end: int, pad: int,
                                             path: str) -> None:
    """A first line cut by the 4 KB head, or just inside or outside it, after odd line breaks, is read
    as the whole text's first line is."""
    indent = " " * max(0, formats.DETECT_HEAD - before_head_end - len(blank) - 1)
    text = blank + "\n" + indent + first + " " * pad + "\r\n{\"type\": \"ok\"}\n"
    expected = _whole_text_rule(text, path)
    try:
        found: str | BaseException = detect_format(text, path)
    except HistoryError as exc:
        found = exc
    assert type(found) is type(expected) and str(found) == str(expected)


def _sixty_four_kb_rule(text: str, path: str) -> str | BaseException:
    """What the format was before the head was read first: detect_format on the first 64 KB (all of
    the text when that much is blank)."""
    read = text[:formats.DETECT_CHARS]
    if not read[:formats.DETECT_CHARS - 1].strip():
        read = text
    try:
        return detect_format(read, path)
    except HistoryError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(blank=st.sampled_from(["", "\n", " " * 4095, " " * 4096 + "\n", "\n" * 70000, ";c\n" * 1400]),
       first=st.sampled_from(["{\"type\": \"invoke\"}", "{:process 0, :type :invoke}", "[{:f :read}]",
                              "INFO  jepsen.util - 0\t:invoke\t:read\tnil", "hello", ""]),
       pad=st.sampled_from([0, 1, 4000, 5000, 70000]), given_format=st.sampled_from([None, "faultbed", "edn"]),
       path=st.sampled_from(["h.jsonl", "h.log"]))
def test_reading_the_head_first_tells_the_format_as_64_kb_did(blank: str, first: str, pad: int,
                                                               given_format: str | None, path: str) -> None:
    """Only the 4 KB head is read when its whole lines show the format; the format found (or the
    error) is the one the first 64 KB gave, and the text read so far is a prefix of the file."""
    import io

    text = blank + first + " " * pad + "\n{\"type\": \"ok\"}\n"
    expected = given_format or _sixty_four_kb_rule(text, path)
    try:
        read, found = formats._read_format(io.StringIO(text), path, given_format)
    except HistoryError as exc:
        read, found = "", exc
    assert type(found) is type(expected) and str(found) == str(expected)
    assert text.startswith(read)


def test_unknown_content_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"h\.txt:1: not a history"):
        load_history(write(tmp_path / "h.txt", "hello\n"))


ETCD = """INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:ok\t:write\t1
INFO  jepsen.util - 1\t:invoke\t:cas\t[2 3]
INFO  jepsen.util - 2   :invoke :read   nil
INFO  jepsen.util - 1\t:fail\t:cas\t[2 3]
INFO  jepsen.util - 2   :fail   :read   :timed-out
INFO  jepsen.util - 3\t:invoke\t:write\t4
INFO  jepsen.util - 3\t:info\t:write\t:timed-out
"""


def test_etcd_log_failed_cas_ran_and_failed_read_did_not(tmp_path: Path) -> None:
    history = load_history(write(tmp_path / "etcd.log", ETCD))
    assert history.model == "cas-register"
    assert [row[3:7] for row in history.ops] == [("write", None, 1, 1), ("cas", None, [2, 3], False),
                                                 ("write", None, 4, None)]
    assert history.ops[2][2] is None  # info: open to the end
    assert [row[1:3] for row in history.ops[:2]] == [(0, 1), (2, 4)]  # entry order is the time


def test_etcd_log_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "etcd.log", ETCD.replace(":ok\t:write\t1", ":ok\t:write\t[1"))
    with pytest.raises(HistoryError, match=r"etcd\.log:2: cannot read the value"):
        load_history(path)


def test_kv_log_maps_get_put_append_and_reads_missing_keys_as_empty(tmp_path: Path) -> None:
    text = ('{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n'
            '{:process 0, :type :ok, :f :get, :key "1", :value ""}\n'
            '{:process 1, :type :invoke, :f :append, :key "1", :value "a \\"b\\""}\n'
            '{:process 1, :type :ok, :f :append, :key "1", :value "a \\"b\\""}\n')
    history = load_history(write(tmp_path / "c.txt", text))
    assert (history.model, history.initial) == ("kv", "")
    assert [row[3:6] for row in history.ops] == [("read", "1", None), ("append", "1", 'a "b"')]


def test_edn_history_reads_keywords_and_drops_knossos_nil_reads(tmp_path: Path) -> None:
    text = """; comment
[{:process 0, :type :invoke, :f :read, :value nil}
 {:process 0, :type :ok, :f :read, :value nil}
 {:process 1, :type :invoke, :f :cas, :value [1 2]}
 {:process :nemesis, :type :info, :f :start, :value nil}
 {:process 1, :type :fail, :f :cas, :value [1 2]}
 {:process 2, :type :invoke, :f :write, :value 3}
 {:process 2, :type :ok, :f :write, :value 3}
 {:process :nemesis, :type :info, :f :stop, :value "healed"}]"""
    history = load_history(write(tmp_path / "h.edn", text))
    assert [row[3:6] for row in history.ops] == [("write", None, 3)]
    assert history.lines == [7]
    (annotation,) = history.annotations
    assert (annotation["start"], annotation["end"]) == (3, 7)


def test_jepsen_history_edn_with_one_map_per_line(tmp_path: Path) -> None:
    text = ("{:index 0, :time 9, :type :invoke, :process 0, :f :write, :value 1}\n"
            "{:index 1, :time 3, :type :ok, :process 0, :f :write, :value 1}\n")
    history = load_history(write(tmp_path / "history.edn", text))
    assert (history.format, history.model) == ("edn", "cas-register")
    assert [row[:7] for row in history.ops] == [(0, 0, 1, "write", None, 1, 1)]  # entry order, not :time
    assert history.lines == [1]


def test_edn_entry_without_type_names_its_line(tmp_path: Path) -> None:
    text = "[{:process 0, :type :invoke, :f :read}\n {:process 0, :f :read}]"
    with pytest.raises(HistoryError, match=r"h\.edn:2: entry has no :type"):
        load_history(write(tmp_path / "h.edn", text))


def test_completion_without_invocation_names_its_line(tmp_path: Path) -> None:
    text = "[{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :read, :value 1}\n" \
           "{:process 0, :type :ok, :f :read, :value 1}]"
    with pytest.raises(HistoryError, match=r"h\.edn:3: ok for process 0 with no open invocation"):
        load_history(write(tmp_path / "h.edn", text))


def test_edn_reader_reads_every_literal() -> None:
    document = read_edn('[nil true false 1 -2N 1.5 1/2 :kw sym "s\\"\\n" \\a \\newline #{1} '
                        '#inst "2020" #_ ignored {:a [1 2] [1] {:b 2}} (1)]')
    assert document.forms == [[None, True, False, 1, -2, 1.5, 0.5, "kw", "sym", 's"\n', "a", "\n", [1],
                               "2020", {"a": [1, 2], (1,): {"b": 2}}, [1]]]


@pytest.mark.parametrize("text, message", [
    ("[1 2", r"x\.edn:1: '\[' is never closed"),
    ("[1\n 2)", r"x\.edn:2: unexpected '\)'"),
    ("{:a}", r"x\.edn:1: a map needs an even number"),
])
def test_edn_syntax_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        read_edn(text, "x.edn")


def nemesis(time: int, f: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"time": time, "f": f, "value": value, "type": "info", **extra}


def test_jepsen_start_and_stop_logged_twice_make_one_interval() -> None:
    events = [nemesis(1, "start"), nemesis(2, "start", "Cut off n1"), nemesis(5, "stop"), nemesis(6, "stop")]
    (annotation,) = nemesis_annotations(events)
    assert (annotation["start"], annotation["end"], annotation["details"]) == (1, 6, "Cut off n1")


def test_faults_overlap_heal_ends_them_all_and_unstopped_ones_run_to_the_end() -> None:
    events = [nemesis(1, "start-partition", {"n1": ["n2"]}), nemesis(2, "kill-start", "n3"),
              nemesis(3, "heal"), nemesis(4, "pause", "n1"), nemesis(5, "start", fault="latency")]
    partition, kill, pause, latency = nemesis_annotations(events)
    assert (partition["end"], kill["end"], pause["start"], pause["end"], latency["end"]) == (3, 3, 4, 4, None)
    assert (partition["tag"], kill["tag"], latency["tag"]) == ("nemesis partition", "nemesis kill",
                                                              "nemesis latency")


def test_faultbed_event_without_time_names_its_position() -> None:
    events = [{"index": 0, "type": "invoke", "process": 0, "f": "read", "value": None},
              {"index": 1, "time": 5, "type": "ok", "process": 0, "f": "read", "value": None}]
    with pytest.raises(HistoryError, match=r"history:1: event has no integer time"):
        rows_from_events(events)


def test_faultbed_nemesis_events_with_fault_and_id_fields() -> None:
    events = [nemesis(1, "start-partition", "partition (blackhole) random-halves: n1 | n2", fault="partition",
                      id="partition#1"),
              nemesis(2, "start-kill", "kill n3", fault="kill", id="kill#1"),
              nemesis(3, "stop-partition", "partition healed", fault="partition", id="partition#1"),
              nemesis(4, "heal", "healed: network")]
    partition, kill = nemesis_annotations(events)
    assert (partition["tag"], partition["start"], partition["end"]) == ("nemesis partition", 1, 3)
    assert partition["description"] == "partition (blackhole) random-halves: n1 | n2"
    assert (kill["tag"], kill["end"], kill["description"]) == ("nemesis kill", 4, "kill n3")
