"""HistoryFile: the events of a history.jsonl as a sequence over the file, read_history's in every way
that reading can tell (the same events, lengths, indices and slices; the same errors for bad files)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultbed.checkers.formats import rows_from_events
from faultbed.errors import HistoryError
from faultbed.history import EVENT_TYPES, HistoryFile, completion_counts, nemesis_events, read_history

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
values = st.recursive(st.none() | st.booleans() | st.integers() | texts,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                      max_leaves=6)
events = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES), "process": st.integers(-5, 1 << 40) | st.just("nemesis") | texts,
     "f": texts, "time": st.integers(0, 1 << 62)},
    optional={"key": values, "value": values, "index": st.integers(0, 1000)})
endings = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])
blanks = st.sampled_from(["\n", "   \n", "\t\r\n", "\r"])


@st.composite
def history_lines(draw: Any) -> list[str]:
    """A history's lines: events with any line ending, blank lines between, perhaps a torn last line."""
    lines = []
    for event in draw(st.lists(events, max_size=12)):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(blanks))
        lines.append(json.dumps(event, ensure_ascii=draw(st.booleans())) + draw(endings))
    if lines and draw(st.booleans()):
        lines.append(lines.pop().rstrip("\r\n"))  # the last line without its newline: still an event
    if draw(st.booleans()):
        whole = json.dumps(draw(events))
        lines.append(whole[:draw(st.integers(0, len(whole) - 1))])  # torn: the writer died mid-line
    return lines


def write(tmp_path: Path, lines: list[str] | bytes) -> str:
    path = tmp_path / "history.jsonl"
    path.write_bytes(lines if isinstance(lines, bytes) else "".join(lines).encode("utf-8"))
    return str(path)


def outcome(read: Any, path: str) -> Any:
    """The events read (as a list), or the HistoryError's message."""
    try:
        return list(read(path))
    except HistoryError as exc:
        return f"HistoryError: {exc}"


@SETTINGS
@given(lines=history_lines(), cuts=st.lists(st.tuples(st.none() | st.integers(-15, 15), st.none() | st.integers(-15, 15),
                                                      st.none() | st.integers(-4, 4).filter(bool)), max_size=3))
def test_the_sequence_reads_what_read_history_reads(tmp_path: Path, lines: list[str],
                                                    cuts: list[tuple[int | None, int | None, int | None]]) -> None:
    path = write(tmp_path, lines)
    expected = read_history(path)
    with HistoryFile(path) as history:
        assert len(history) == len(expected)
        assert list(history) == expected
        assert list(history) == expected  # a second pass reads the file again
        for index in range(-len(expected), len(expected)):
            assert history[index] == expected[index]
        for index in (len(expected), -len(expected) - 1):
            with pytest.raises(IndexError):
                history[index]
        view: Any = history
        for start, stop, step in cuts:  # slices of slices
            view, expected = view[start:stop:step], expected[start:stop:step]
            assert isinstance(view, HistoryFile)
            assert len(view) == len(expected) and list(view) == expected
            assert [view[i] for i in range(-len(expected), 0)] == expected
            assert_kinds_known(view, expected)
        assert_kinds_known(history.nemesis()[::-1], [e for e in read_history(path) if e["process"] == "nemesis"][::-1])


@SETTINGS
@given(lines=history_lines(), chosen=st.sets(st.integers(1, 16)), step=st.integers(-3, 3).filter(bool))
def test_chosen_events_are_read_alone_as_a_pass_reads_them(tmp_path: Path, lines: list[str], chosen: set[int],
                                                           step: int) -> None:
    """numbered(): the events at chosen places (an illegal key's, which Go names) parsed without the
    others, each with its place, as a pass numbers them; in a view too; nemesis_numbers() the same."""
    path = write(tmp_path, lines)
    expected = read_history(path)
    with HistoryFile(path) as history:
        for view, events in ((history, expected), (history[::step], expected[::step])):
            numbers = sorted(n for n in chosen if n <= len(events))
            assert list(view.numbered(numbers)) == [(n, events[n - 1]) for n in numbers]
            assert view.nemesis_numbers() == [n for n, e in enumerate(events, 1) if e["process"] == "nemesis"]
            for wrong in (0, len(events) + 1):
                with pytest.raises(IndexError):
                    view.numbered([wrong])


def test_chosen_events_far_apart_in_a_long_file(tmp_path: Path) -> None:
    """Reads of chosen events share blocks; a line longer than a block is read whole."""
    long = json.dumps({"type": "ok", "process": 1, "f": "read", "value": "x" * (3 << 20), "time": 7}) + "\n"
    path = write(tmp_path, LINES * 40000 + [long] + LINES)
    with HistoryFile(path) as history:
        numbers = [1, 2, 5000, 239999, 240000, 240001, 240002, 240007]
        got = list(history.numbered(numbers))
        assert [n for n, _ in got] == numbers
        assert [e["time"] for _, e in got] == [0, 1, 1, 4, 5, 7, 0, 5]
        assert len(got[5][1]["value"]) == 3 << 20


def assert_kinds_known(view: HistoryFile, expected: list[dict[str, Any]]) -> None:
    """What the scan noted of each event (its type, whether the nemesis's) answers as reading would."""
    assert list(view.nemesis()) == nemesis_events(expected) == [e for e in expected if e["process"] == "nemesis"]
    assert completion_counts(view) == completion_counts(expected)
    assert view.client_type_counts() == {t: sum(e["type"] == t and e["process"] != "nemesis" for e in expected)
                                         for t in EVENT_TYPES}


@SETTINGS
@given(event=events, ensure_ascii=st.booleans(), cut=st.integers(0, 400),
       suffix=st.text(st.sampled_from(" \t\r\n\x0b\x0c\u00a0\u2028x}]{\",0"), max_size=4))
def test_a_line_is_the_json_that_json_loads_reads(event: dict[str, Any], ensure_ascii: bool, cut: int,
                                                  suffix: str) -> None:
    """Lines that start with '{' are scanned without json.loads's layers: the same value, or the
    same error, as json.loads gives (whitespace after the value is JSON's four characters only)."""
    from faultbed.history import _load

    text = json.dumps(event, ensure_ascii=ensure_ascii)
    for line in (text + suffix, text[:cut] + suffix, " " + text + suffix):
        try:
            expected: Any = json.loads(line)
        except ValueError as exc:
            expected = f"not JSON: {str(exc)[:200]}"
        try:
            got: Any = _load(line, "h", 1)
        except HistoryError as exc:
            got = str(exc).removeprefix("h:1: ")
        assert got == expected, line


BAD_LINES = [
    '{"type": "invoke", "process": 1, "f": "read"',           # not JSON, with its newline
    '[1, 2]', '"text"', '{}',                                   # not an object, no type
    '{"type": "done", "process": 1, "f": "read"}',
    '{"type": "ok", "f": "read"}',                               # no process
    '{"type": "ok", "process": true, "f": "read"}', '{"type": "ok", "process": [1], "f": "read"}',
    '{"type": "ok", "process": 1}', '{"type": "ok", "process": 1, "f": 3}',
    '{"type": "ok", "process": 1, "f": "read", "time": 1.5}', '{"type": "ok", "process": 1, "f": "r", "time": "1"}',
    '{"type": "ok", "process": 1, "f": "read", "value": ' + "[" * 70 + "]" * 70 + "}",  # too deep
    '{"type": "ok", "process": 1, "f": "read", "value": 1' + "0" * 5000 + "}",           # a huge integer
    '{"type": "ok", "process": 1, "f": "read", "value": NaN}', '\ufeff{"type": "ok", "process": 1, "f": "read"}',
]


@SETTINGS
@given(lines=history_lines(), bad=st.sampled_from(BAD_LINES), at=st.integers(0, 20), ending=endings,
       garbage=st.sampled_from([b"", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
def test_a_bad_file_is_the_same_history_error(tmp_path: Path, lines: list[str], bad: str, at: int, ending: str,
                                              garbage: bytes) -> None:
    ended = len(lines) - (1 if lines and not lines[-1].endswith(("\n", "\r")) else 0)  # before a torn line
    lines.insert(min(at, ended), bad + ending)
    data = "".join(lines).encode("utf-8")
    if garbage:
        middle = data.find(b"\n", len(data) // 2)
        data = data[:middle + 1] + garbage + data[middle + 1:]
    path = write(tmp_path, data)
    expected = outcome(read_history, path)
    assert outcome(HistoryFile, path) == expected


def test_special_and_missing_files_are_the_same_errors(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path in (str(tmp_path / "fifo"), str(tmp_path), str(tmp_path / "missing.jsonl")):
        assert outcome(HistoryFile, path) == outcome(read_history, path)
        assert outcome(HistoryFile, path).startswith("HistoryError: ")
    assert outcome(HistoryFile, os.devnull) == [] == outcome(read_history, os.devnull)


LINES = [json.dumps({"type": t, "process": 1, "f": "read", "time": i}) + "\n"
         for i, t in enumerate(["invoke", "ok"] * 3)]


@pytest.mark.parametrize("change", ["append", "rewrite", "truncate"])
def test_a_file_changed_after_reading_is_an_error_not_another_history(tmp_path: Path, change: str) -> None:
    path = write(tmp_path, LINES * 3000)  # more than one block: a pass under way reads the file again
    history = HistoryFile(path)
    events = iter(history)
    assert next(events)["time"] == 0
    stat = os.stat(path)
    with open(path, "a" if change == "append" else "w") as fh:
        fh.write({"append": LINES[0], "rewrite": "".join(LINES * 3000).replace("read", "rean"), "truncate": ""}[change])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # even within one clock tick
    for read in (lambda: history[3], lambda: list(history), lambda: list(history[2:]), lambda: list(events),
                 lambda: list(history.numbered([2, 17000]))):
        with pytest.raises(HistoryError, match=r"history.jsonl: changed since it was read"):
            read()


def test_a_file_replaced_after_reading_is_still_the_one_read(tmp_path: Path) -> None:
    path = write(tmp_path, LINES)
    with HistoryFile(path) as history:
        other = tmp_path / "other.jsonl"
        other.write_text(LINES[0])
        os.replace(other, path)
        assert len(history) == 6 and [e["time"] for e in history] == list(range(6)) and history[-1]["time"] == 5


def test_rows_from_events_number_a_file_s_events_as_a_list_s(tmp_path: Path) -> None:
    """The linearizability checker's rows name each operation's line; a HistoryFile's events are fresh
    dicts on every pass, so the lines are counted in the one pass that pairs them."""
    nemesis = {"type": "info", "process": "nemesis", "f": "start-partition", "value": {"n1": ["n2"]}, "time": 3}
    lines = ["\n"] + [json.dumps(e) + "\n" for e in [
        {"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 1, "index": 0},
        {"type": "invoke", "process": 1, "f": "read", "key": "a", "value": None, "time": 2, "index": 1}, nemesis,
        {"type": "ok", "process": 1, "f": "read", "key": "a", "value": 1, "time": 4, "index": 3},
        {"type": "info", "process": 0, "f": "write", "key": "a", "value": 1, "time": 5, "index": 4}]]
    path = write(tmp_path, lines)
    with HistoryFile(path) as history:
        assert rows_from_events(history) == rows_from_events(read_history(path))
        assert rows_from_events(history)[1] == [1, 2]
