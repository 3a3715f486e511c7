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
    path = write(tmp_path, spoiled(lines, [bad], at, ending, garbage))
    expected = outcome(read_history, path)
    assert outcome(HistoryFile, path) == expected


def spoiled(lines: list[str], bad: list[str], at: int, ending: str, garbage: bytes) -> bytes:
    """The lines with `bad` ones put in at `at` (before a torn last line), and `garbage` bytes after
    the line in the middle."""
    ended = len(lines) - (1 if lines and not lines[-1].endswith(("\n", "\r")) else 0)
    for line in bad:
        lines.insert(min(at, ended), line + ending)
    data = "".join(lines).encode("utf-8")
    if garbage:
        middle = data.find(b"\n", len(data) // 2)
        data = data[:middle + 1] + garbage + data[middle + 1:]
    return data


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


# -- the scan in Go (checkers/porcupine/scan.go): Python's scan, exactly ------------------------------------

def scanned(path: str, in_go: bool) -> Any:
    """What HistoryFile's scan kept of the file (offsets, kinds, columns and their pairs, where it ends), or its error;
    in_go: with Go's scan for every file (Python's when Go leaves it), else Python's alone."""
    import faultbed.history

    kept = faultbed.history.SCAN_IN_GO_BYTES
    faultbed.history.SCAN_IN_GO_BYTES = 0 if in_go else 1 << 62
    try:
        with HistoryFile(path) as history:
            columns = history.columns()
            return (list(history._offsets), bytes(history._kinds), history._source.end, history._source.size,
                    columns and (list(columns.processes), list(columns.fs), list(columns.times), columns.f_ids,
                                 columns.pairs()))
    except HistoryError as exc:
        return f"HistoryError: {exc}"
    finally:
        faultbed.history.SCAN_IN_GO_BYTES = kept


# lines that Go's reader could take for events and Python does not, or reads as other values
TRICKY_LINES = [
    '{"type": "ok", "process": 1, "f": "read", "value": "\\q", "time": 1}',             # a bad escape
    '{"type": "ok", "process": 1, "f": "read", "value": "\\u12", "time": 1}',
    '{"type": "ok", "process": 1, "f": "read", "value": "\\ud800", "time": 1}',         # a lone surrogate: JSON
    '{"type": "ok", "process": 1, "f": "read", "value": "a\\"b\\\\", "time": 1}',
    '{"type": "o\\u006b", "process": 1, "f": "read", "time": 1}', '{"type": "ok", "process": 1, "f": "re\\u0061d", "time": 1}',
    '{"type": "ok", "process": "nemes\\u0069s", "f": "x", "time": 1}', '{"type": "ok", "process": "1", "f": "read", "time": 1}',
    '{"type": "ok", "process": -0, "f": "read", "time": 1}', '{"type": "ok", "process": 0, "f": "read", "time": 1}',
    '{"type": "ok", "process": 1.0, "f": "read", "time": 1}', '{"type": "ok", "process": 1e2, "f": "read", "time": 1}',
    '{"type": "ok", "process": 99999999999999999999, "f": "read", "time": 1}',
    '{"type": "ok", "process": 70000, "f": "read", "time": 1}', '{"type": "ok", "process": -3, "f": "read", "time": 1}',
    '{"type": "ok", "process": "caf\u00e9", "f": "r\u00e9ad", "time": 1}',
    '{"type": "ok", "process": 1, "f": "read", "time": -0}', '{"type": "ok", "process": 1, "f": "read", "time": -7}',
    '{"type": "ok", "process": 1, "f": "read", "time": 1e3}', '{"type": "ok", "process": 1, "f": "read", "time": null}',
    '{"type": "ok", "process": 1, "f": "read", "time": 9223372036854775808}',
    '{"type": "ok", "process": 1, "f": "read"}', '{"type": "info", "process": "nemesis", "f": "start"}',
    '{"type": "info", "process": "nemesis", "f": "start", "time": "soon"}',
    '{"type": "ok", "type": "fail", "process": 1, "f": "read", "time": 1}',             # a field twice: the last
    '{"type": "ok", "process": 1, "process": 2, "f": "read", "time": 1}',
    '{"type": "ok", "process": 1, "f": "read", "time": 1, "time": 2}',
    '{"type": "ok", "process": 1, "f": "read", "time": 1, "value": ' + "[" * 63 + "]" * 63 + "}",
    '{"type": "ok", "process": 1, "f": "read", "time": 1, "value": ' + "[" * 64 + "]" * 64 + "}",
    '{"type": "ok", "process": 1, "f": "read", "time": 1, "value": [' + ", ".join(["[]"] * 90) + "]}",
    '{"type": "ok", "process": 1, "f": "read", "time": 1, "value": "' + "[" * 90 + '"}',
    '{"type": "ok", "process": 1, "f": "read", "time": 1, "value": Infinity}',
    '{"type": "ok", "process": 1, "f": "read", "time": 1, "value": "a\tb"}',            # a raw tab in a string
    '{"type": "ok", "process": 1, "f": "read", "time": 1} \t', '  {"type": "ok", "process": 1, "f": "read", "time": 1}',
    '{"type": "ok", "process": 1, "f": "read", "time": 1}\x0c', '{"type":"ok","process":1,"f":"read","time":1}',
    '{"type": "ok", "process": 1, "f": "", "time": 1}', '{"type": "ok", "process": 1, "f": "read", "time": 1, "x": {}}',
    "\x0b", "\u00a0", " \t ", "\x1c",
]


@SETTINGS
@given(lines=history_lines(), tricky=st.lists(st.sampled_from(TRICKY_LINES + BAD_LINES), max_size=3),
       at=st.integers(0, 20), ending=endings, garbage=st.sampled_from([b"", b"", b"\xff", b"\xed\xa0\x80", b"\x00"]))
def test_go_s_scan_keeps_what_python_s_keeps_or_leaves_the_file_to_it(tmp_path: Path, lines: list[str],
                                                                      tricky: list[str], at: int, ending: str,
                                                                      garbage: bytes) -> None:
    path = write(tmp_path, spoiled(lines, tricky, at, ending, garbage))
    assert scanned(path, in_go=True) == scanned(path, in_go=False)


names = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8)
usual_events = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES), "process": st.integers(-5, 1 << 40) | st.just("nemesis") | names,
     "f": names, "time": st.integers(-(1 << 63), (1 << 63) - 1)},
    optional={"key": values, "value": values, "index": st.integers(0, 1000)})


@SETTINGS
@given(events=st.lists(usual_events, max_size=40), ensure_ascii=st.booleans(), blank=st.sampled_from(["", "\n", " \t\n"]),
       tail=st.sampled_from(["", "torn", "whole", "blank"]), cut=st.integers(1, 60))
def test_go_reads_usual_histories_as_python_does(tmp_path: Path, events: list[dict[str, Any]], ensure_ascii: bool,
                                                 blank: str, tail: str, cut: int) -> None:
    """Histories as runs write them (Go reads them, not Python): the same columns, torn last lines too."""
    lines = [json.dumps(event, ensure_ascii=ensure_ascii) + "\n" + (blank if i % 7 == 3 else "")
             for i, event in enumerate(events)]
    if tail and events:
        last = lines.pop().rstrip("\n")
        lines.append({"torn": last[:cut], "whole": last, "blank": last + "\n  "}[tail])
    path = write(tmp_path, lines)
    assert scanned(path, in_go=True) == scanned(path, in_go=False)


@st.composite
def paired_events(draw: Any) -> list[dict[str, Any]]:
    """Clients' operations interleaved, each client's in order (an invocation, then its completion,
    or none for the last), with the nemesis's events between; perhaps one event out of place."""
    queues = []
    for process in range(draw(st.integers(1, 5))):
        queue: list[dict[str, Any]] = []
        for f, outcome in draw(st.lists(st.tuples(names, st.sampled_from(["ok", "fail", "info", None])), max_size=6)):
            queue.append({"type": "invoke", "process": process, "f": f})
            if outcome is None or outcome == "info":
                if outcome:
                    queue.append({"type": "info", "process": process, "f": f})
                break
            queue.append({"type": outcome, "process": process, "f": f})
        queues.append(queue)
    chooser, events = draw(st.randoms()), []
    while any(queues):
        if chooser.random() < 0.1:
            events.append({"type": "info", "process": "nemesis", "f": chooser.choice(["start-kill", "heal"])})
        events.append(chooser.choice([q for q in queues if q]).pop(0))
    if events and draw(st.integers(0, 4)) == 0:  # an event out of place: the events do not pair
        events.insert(draw(st.integers(0, len(events))), dict(draw(st.sampled_from(events))))
    return [{**event, "time": time} for time, event in enumerate(events)]


@SETTINGS
@given(events=paired_events(), tail=st.sampled_from(["", "torn", "whole"]), cut=st.integers(1, 40))
def test_go_pairs_as_python_pairs(tmp_path: Path, events: list[dict[str, Any]], tail: str, cut: int) -> None:
    lines = [json.dumps(event) + "\n" for event in events]
    if tail and lines:
        last = lines.pop().rstrip("\n")
        lines.append(last[:cut] if tail == "torn" else last)
    path = write(tmp_path, lines)
    assert scanned(path, in_go=True) == scanned(path, in_go=False)


@pytest.mark.parametrize("line", TRICKY_LINES)
def test_go_s_scan_of_one_unusual_line_among_usual_ones(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, LINES + [line + "\n"] + LINES)
    assert scanned(path, in_go=True) == scanned(path, in_go=False)


def test_go_scans_what_faultbed_writes_itself(tmp_path: Path) -> None:
    """A run's history, as HistoryWriter writes it, is read by Go (not left to Python) and kept alike:
    clients numbered in order of appearance, fs too, the nemesis's events -1 and time 0."""
    from array import array

    from faultbed.history import HistoryWriter
    from faultbed.native import scan_history

    path = tmp_path / "history.jsonl"
    with HistoryWriter(str(path)) as writer:
        writer.nemesis("start-partition", {"n1": ["n2"]})
        for step in range(3000):
            process = (7, "client-b", 3)[step % 3]
            invocation = writer.invoke(process, ("read", "write", "cas")[step % 3 == 1], key=f"k{step % 5}",
                                       value=None if step % 3 != 1 else [step, "é\n\"x\""])
            writer.complete(invocation, "info" if step >= 2997 else ("ok", "fail")[step % 2], value=step)
        writer.nemesis("stop-partition", "healed")
    columns = (array("q"), bytearray(), array("i"), array("i"), array("q"))
    answer = scan_history(str(path), *columns)
    assert not isinstance(answer, str), answer
    assert answer.end == answer.size == path.stat().st_size and len(columns[0]) == 6002
    assert answer.f_names == ["start-partition", "read", "write", "stop-partition"]
    assert answer.paired is not None and list(answer.paired[0][:2]) == [1, 3] and list(answer.paired[1][:2]) == [2, 4]
    assert list(columns[2][:4]) == [-1, 0, 0, 1] and columns[1][0] == 3 | 4 and columns[4][0] == 0  # info, the nemesis's
    assert scanned(str(path), in_go=True) == scanned(str(path), in_go=False)
