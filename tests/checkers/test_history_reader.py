"""Go's history.jsonl reader agrees with Python's, and leaves what it is unsure of to Python."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.histories import Shape, generate
from faultbed.checkers.formats import import_faultbed, load_history
from faultbed.checkers.linearizable import check_file, check_imported, check_operations
from faultbed.errors import FaultbedError, HistoryError


def python_verdict(path: str, model: str = "kv") -> tuple[object, int, int, list]:
    history = import_faultbed(path)
    result = check_operations(history.ops, model)
    return (result.valid, result.details["ops"], result.details["partitions"],
            result.details.get("illegal_keys", []))


def go_verdict(path: str, model: str = "kv") -> tuple[object, int, int, list] | None:
    result = check_file(path, model)
    if result is None:
        return None
    return (result.valid, result.details["ops"], result.details["partitions"],
            result.details.get("illegal_keys", []))


@pytest.mark.parametrize("shape", [
    Shape(3000, seed=1), Shape(3000, seed=2, broken=True), Shape(3000, seed=3, info_rate=0.02),
    Shape(3000, seed=4, info_rate=0.05, broken=True, anomaly_at=0.2), Shape(2000, seed=5, keys=1, processes=5),
    Shape(3000, seed=7, broken=True, anomaly="stale"),  # found by the search, not the impossible-read test
], ids=lambda s: s.name())
def test_go_reader_gives_the_same_verdict_ops_and_keys_as_python(tmp_path: Path, shape: Shape) -> None:
    path = generate(shape, str(tmp_path / "history.jsonl"))
    expected = python_verdict(path)
    assert expected[0] is (not shape.broken)
    assert go_verdict(path) == expected


def lines(*events: dict | str) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)


W = {"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "index": 0, "time": 10}
WOK = {"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "index": 1, "time": 20}
R = {"type": "invoke", "process": 1, "f": "read", "key": "a", "value": None, "index": 2, "time": 30}
ROK = {"type": "ok", "process": 1, "f": "read", "key": "a", "value": 1, "index": 3, "time": 40}


READER_CASES = [
    (lines(W, WOK, R, ROK), False),
    (lines(W, WOK, "", R, "   ", ROK), False),                                      # blank lines
    (lines(W, WOK, R, ROK) + '{"type": "invoke", "proc', False),                     # torn last line
    (lines(W, WOK, {**R, "key": [1, 2]}, {**ROK, "key": [1, 2], "value": None}), False),  # list keys
    (lines({**W, "process": "c1"}, {**WOK, "process": "c1"}, R, ROK), False),       # string processes
    (lines(W, {"type": "info", "process": "nemesis", "f": "start", "value": {"a": 1}, "time": 25}, WOK, R, ROK),
     False),                                                                         # nemesis events
    (lines({**W, "process": "0"}, W, {**WOK, "process": "0"}, WOK, R, ROK), False),  # 0 and "0": two processes
    (lines({**W, "process": 1 << 20}, {**WOK, "process": 1 << 20}, {**R, "process": -3},
           {**ROK, "process": -3}), False),                                          # large and negative numbers
    (lines({**W, "process": 7}, {**R, "process": 999999}, {**WOK, "process": 7},
           {**ROK, "process": 999999}), False),                                      # far apart small numbers
    (lines(W, WOK, R, ROK).replace(", ", ",").replace(": ", ":"), False),            # compact separators
    (lines(W, WOK, R, ROK).replace(", ", " ,  ").replace(": ", " :\t"), False),      # wide separators
    (lines(W, WOK, {**R, "time": 1234567890123456789}, {**ROK, "time": 1234567890123456790}),
     False),                                                                         # 19-digit times
    (lines(W, WOK, R, {**ROK, "value": 1.0}), True),                                 # a float
    (lines(W, WOK, R, {**ROK, "value": {"x": 1}}), True),                            # an object
    (lines({**W, "key": "\u00e9"}, {**WOK, "key": "\u00e9"}, R, ROK), True),         # an escape
    (lines(W, WOK, R, ROK).replace('"f": "read", "key"', '"f": "read", "f": "read", "key"'), True),  # twice
]


@pytest.mark.parametrize("text, left_to_python", READER_CASES)
def test_go_reader_agrees_or_leaves_the_file_to_python(tmp_path: Path, text: str, left_to_python: bool) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(text)
    got = go_verdict(str(path))
    assert (got is None) is left_to_python
    if got is not None:
        assert got == python_verdict(str(path))
    assert check_imported(load_history(str(path), streamed=True)).valid is python_verdict(str(path))[0]


@pytest.mark.parametrize("text", [text for text, left_to_python in READER_CASES
                                  if not left_to_python and not text.endswith('"proc')])
def test_the_events_go_names_for_an_illegal_key_are_its_operations_as_python_pairs_them(
        tmp_path: Path, text: str) -> None:
    """Each way of writing a history Go reads: made illegal on key "a" (a read of 99), the events Go names
    (events_of_illegal) read alone give the rows and annotations of a pass over every event."""
    from faultbed.checkers.formats import ROW_KEY, rows_from_events, rows_from_numbered, same_key
    from faultbed.history import HistoryFile

    path = tmp_path / "history.jsonl"
    path.write_text(lines({**W, "process": 9, "key": "b"}) + text +
                    lines({**R, "process": 5, "time": 50}, {**ROK, "process": 5, "value": 99, "time": 60},
                          {**WOK, "process": 9, "key": "b", "time": 70}))
    result = check_file(str(path), "kv", events_of_illegal=True)
    assert result is not None and result.valid is False and result.details["illegal_keys"] == ["a"]
    with HistoryFile(str(path)) as history:
        numbers = sorted({*result.details["illegal_events"], *history.nemesis_numbers()})
        some = rows_from_numbered(history.numbered(numbers))
        every = rows_from_events(history)
    kept = [i for i, row in enumerate(every[0]) if same_key(row[ROW_KEY], "a")]
    assert some[0] == [every[0][i] for i in kept] and some[1] == [every[1][i] for i in kept]
    assert some[2] == every[2]


LONG = "k" * 20_000  # longer than the first block (16 KB)
LONGER = "q" * 70_000  # longer than two blocks (32 KB each)


def _after(count: int) -> str:
    """count lines (about 100 bytes each), then a line longer than two blocks: it starts in a block of the
    head (16 KB, then 32 KB, 32 KB: read by the pairing goroutine itself) or after it."""
    return lines(*[{**W, "index": i, "time": 10 + i} if i % 2 == 0 else {**WOK, "index": i, "time": 10 + i}
                   for i in range(count)], {**R, "key": LONGER, "time": 4000},
                 {**ROK, "key": LONGER, "value": None, "time": 4001})


@pytest.mark.parametrize("text", [
    lines({**W, "key": LONG}, {**WOK, "key": LONG}, R, ROK),
    lines(W, WOK, {**R, "key": LONGER}, {**ROK, "key": LONGER, "value": None}, R, ROK),
    _after(300), _after(600), _after(900), _after(1200),
    lines({**W, "key": LONG}, {**WOK, "key": LONG}),  # the whole file is one long block
], ids=["first-line-longer-than-the-first-block", "a-line-longer-than-two-blocks", "after-300-lines",
        "after-600-lines", "after-900-lines", "after-1200-lines", "only-long-lines"])
def test_lines_longer_than_a_block_read_as_python_reads_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(text)
    assert go_verdict(str(path)) == python_verdict(str(path))


@pytest.mark.parametrize("text", [
    lines(W, W, WOK),                           # invokes while open
    lines(W, WOK, ROK),                         # completion with no invocation
    lines(W, {**WOK, "time": "late"}),          # no integer time
    lines(W, WOK, "{not json}", R, ROK),        # a bad line that is not the last
    lines(W, {**WOK, "time": 5}),               # returns before it is called
    lines(W, WOK, R, {**ROK, "time": 123456789012345678901}),  # a time beyond 64 bits
    lines(W, WOK, R, ROK).replace('"time": 40', '"time": 4e1'),  # a time that is not an integer
    lines(W, WOK, R) + json.dumps(ROK) + " x\n" + lines(W),   # a line of a known layout, then more
    lines(W, WOK, R) + json.dumps(ROK)[:-1] + ', "more": }\n' + lines(W),  # ... then a broken field
    lines(W, WOK, R, {**ROK, "error": "zz"}).replace('"zz"', '"\\q"'),  # an escape JSON has not (Go read it valid)
    lines(W, WOK, R, {**ROK, "error": "zz"}).replace('"zz"', '"\\u12x"'),
])
def test_bad_histories_get_pythons_error_naming_the_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(text)
    assert check_file(str(path), "kv") is None
    with pytest.raises(HistoryError) as from_python:
        check_operations(import_faultbed(str(path)).ops, "kv", where=import_faultbed(str(path)).where)
    with pytest.raises(HistoryError) as streamed:
        check_imported(load_history(str(path), streamed=True))
    assert str(streamed.value) == str(from_python.value)


@pytest.mark.parametrize("shape", [
    Shape(12_000, seed=7, keys=1, processes=4), Shape(12_000, seed=8, keys=1, processes=4, broken=True),
    Shape(12_000, seed=9, keys=1, processes=4, broken=True, anomaly_at=0.05, anomaly="stale"),
    Shape(12_000, seed=10, keys=1, processes=4, broken=True, anomaly_at=0.97, anomaly="stale"),
    Shape(12_000, seed=11, keys=2, processes=6, info_rate=0.0005, broken=True, anomaly_at=0.9),
], ids=lambda s: s.name())
def test_long_keys_searched_in_segments_keep_their_verdict(tmp_path: Path, shape: Shape) -> None:
    path = generate(shape, str(tmp_path / "history.jsonl"))
    result = check_file(path, "kv")
    assert result is not None and result.valid is (not shape.broken)
    assert result.details["segments"] > shape.keys  # cut at least once per key
    assert check_operations(import_faultbed(path).ops, "kv").valid is result.valid


def test_memory_limit_makes_the_verdict_unknown_and_says_why(tmp_path: Path) -> None:
    # one key, an early timeout (info): no cut, a single 20,000-op search
    path = generate(Shape(20_000, seed=3, keys=1, processes=8, info_rate=0.001), str(tmp_path / "history.jsonl"))
    result = check_file(path, "kv", memory_limit_mb=1)
    assert result is not None and result.valid == "unknown"
    assert result.details["reason"] == "memory limit of 1 MB reached"
    assert check_file(path, "kv", timeout=0.001).details["reason"] == "timed out after 0.001 s"


def test_the_machine_running_low_on_memory_makes_the_verdict_unknown_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks side by side can each stay within their own limit and together take the machine: a
    search stops (unknown) when the machine's available memory falls below the floor while it holds
    more than FLOOR_HOLD_MB. Here the floor is above all the machine has, and any hold counts."""
    from faultbed import memory
    from faultbed.checkers import linearizable

    path = generate(Shape(20_000, seed=3, keys=1, processes=8, info_rate=0.001), str(tmp_path / "history.jsonl"))
    assert check_file(path, "kv").valid is True  # the floor (at most 1 GB) leaves this one alone
    total_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    monkeypatch.setenv(memory.FLOOR_ENV, str(2 * total_mb))
    monkeypatch.setattr(linearizable, "FLOOR_HOLD_MB", 0.0)
    for result in (check_file(path, "kv"), check_imported(load_history(path), "kv")):
        assert result is not None and result.valid == "unknown"
        reason = result.details["reason"]
        assert re.fullmatch(rf"the machine's available memory fell to \d+ MB \(the floor: {2 * total_mb:.0f} MB, "
                            rf"\$FAULTBED_CHECK_MEMORY_FLOOR_MB\) while this check held \d+ MB", reason), reason
    monkeypatch.setenv(memory.FLOOR_ENV, "0")  # none
    assert check_file(path, "kv").valid is True
    monkeypatch.setenv(memory.FLOOR_ENV, "lots")
    with pytest.raises(FaultbedError, match="FAULTBED_CHECK_MEMORY_FLOOR_MB must be a number of megabytes"):
        check_file(path, "kv")


def fails(path: str) -> int:
    return sum('"type": "fail"' in line for line in Path(path).read_text().splitlines())


@pytest.mark.parametrize("broken, anomaly", [(False, ""), (True, "impossible"), (True, "stale")])
def test_a_runs_check_reads_the_stored_history_in_go_and_explains_an_anomaly_in_python(
        tmp_path: Path, broken: bool, anomaly: str) -> None:
    from faultbed.checkers.linearizable import LINEARIZABLE
    from faultbed.history import read_history
    from faultbed.spec import TestSpec

    path = generate(Shape(3000, seed=12, broken=broken, anomaly=anomaly or "impossible"),
                    str(tmp_path / "history.jsonl"))
    result = LINEARIZABLE.check(read_history(path), TestSpec(), str(tmp_path))
    assert result.valid is (not broken)
    assert ("first_anomaly" in result.details) is broken  # Python's rows: the first anomalous operation
    assert (tmp_path / "linearizability.html").exists() is broken
    assert "events" not in result.details
    if broken:  # drawn from the quick check's illegal key alone: the other keys' rows never went to Go again
        whole = (tmp_path / "linearizability-full.html").read_text()
        keys = {key for key in re.findall(r'"Description":"\w+\((k\d)', whole)}
        assert keys == set(result.details["illegal_keys"]) and result.details["ops"] == 3000 - fails(path)


@pytest.mark.parametrize("anomaly", ["impossible", "stale"])
def test_a_runs_explanation_reads_the_illegal_keys_events_alone_and_says_the_same(
        tmp_path: Path, anomaly: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's history is a HistoryFile: the quick check names where the illegal keys' operations
    are (illegal_events) and only those events and the nemesis's are read again; the verdict, the
    first anomaly, its time and both pictures are what reading every event gives."""
    from faultbed.checkers import linearizable
    from faultbed.checkers.linearizable import LINEARIZABLE
    from faultbed.history import HistoryFile, read_history
    from faultbed.spec import TestSpec

    generated = generate(Shape(3000, seed=15, info_rate=0.01, broken=True, anomaly=anomaly),
                         str(tmp_path / "generated.jsonl"))
    lines = Path(generated).read_text().splitlines(keepends=True)
    for at, f in ((len(lines) * 2 // 3, "stop-partition"), (len(lines) // 3, "start-partition")):  # as a run has them
        time = json.loads(lines[at])["time"]
        lines.insert(at, json.dumps({"type": "info", "process": "nemesis", "f": f, "value": "n1 | n2", "fault": "partition",
                                     "id": "partition#1", "index": -1, "time": time}) + "\n")
    passes = []
    whole = linearizable.rows_from_events
    monkeypatch.setattr(linearizable, "rows_from_events", lambda events, *a: passes.append(1) or whole(events, *a))
    said = {}
    for kind in ("list", "file"):
        out = tmp_path / kind
        out.mkdir()
        (out / "history.jsonl").write_text("".join(lines))
        events = read_history(str(out / "history.jsonl")) if kind == "list" else HistoryFile(str(out / "history.jsonl"))
        passes.clear()
        result = LINEARIZABLE.check(events, TestSpec(), str(out))
        assert len(passes) == (1 if kind == "list" else 0)  # every event read into a row, or none
        details = {k: v for k, v in result.details.items()
                   if not k.endswith("_ms") and "visualization" not in k
                   and k not in ("peak_rss_mb", "segments", "segments_while_reading", "cancelled_partitions")}  # timing
        pages = {page: (out / page).read_bytes() for page in ("linearizability.html", "linearizability-full.html")}
        said[kind] = (result.valid, result.summary, details, pages)
    assert said["list"] == said["file"]
    valid, summary, details, pages = said["file"]
    assert valid is False and "illegal_events" not in details and details["first_anomaly"]["prefix_ops"] > 0
    assert all(b"n1 | n2" in page for page in pages.values())  # the nemesis's partition, drawn beside

    # places that do not match the file (Go and Python numbering it differently) are caught, and
    # every event is read instead: the explanation is never drawn from other operations' rows
    history = HistoryFile(str(tmp_path / "file" / "history.jsonl"))
    quick = check_file(history.path, "kv", events_of_illegal=True)
    assert quick is not None and quick.details["illegal_events"]
    for wrong in ([n + 1 for n in quick.details["illegal_events"]], [n - 1 for n in quick.details["illegal_events"]][1:]):
        passes.clear()
        drawn = linearizable.check_history(history, "kv", None, 60, str(tmp_path / "wrong.html"),
                                           known_illegal=quick.details["illegal_keys"], illegal_events=wrong)
        assert len(passes) == 1 and drawn.details["first_anomaly"] == details["first_anomaly"]


@pytest.fixture(scope="module")
def large_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Over 8 MB: Go parses it in blocks, in parallel."""
    path = tmp_path_factory.mktemp("large") / "history.jsonl"
    generate(Shape(40_000, seed=13, info_rate=0.001, broken=True, anomaly_at=0.99), str(path))
    assert path.stat().st_size > 8 << 20
    return path


def test_a_large_history_parsed_in_parallel_reads_as_python_reads_it(large_history: Path, tmp_path: Path) -> None:
    assert go_verdict(str(large_history)) == python_verdict(str(large_history))
    torn = tmp_path / "history.jsonl"
    torn.write_text(large_history.read_text() + '{"type": "invoke", "process": 3, "f": "re')
    assert go_verdict(str(torn)) == python_verdict(str(torn))
    result = check_file(str(torn), "kv")
    assert result is not None and result.details["events"] == 80_000


def test_a_bad_line_deep_in_a_large_history_goes_to_python(large_history: Path, tmp_path: Path) -> None:
    lines = large_history.read_text().splitlines(keepends=True)
    lines[len(lines) // 2] = '{"type": "ok", "process": 1, "f": "read", "value": 1.5, "time": 1}\n'
    bad = tmp_path / "history.jsonl"
    bad.write_text("".join(lines))
    assert check_file(str(bad), "kv") is None


# Go remembers the layout of lines it has read (checkers/porcupine/shapes.go) and reads a line of a
# known layout by comparing the bytes between its values: lines that share a layout up to a point and
# then differ (in spaces, field order, an extra field, a value of another kind) must read as Python
# reads them, or go back to Python.
LAYOUT_SEPARATORS = [(", ", ": "), (",", ":"), (" , ", " :  "), (", ", ":")]


def _layout_line(event: dict, order: list[str], separators: tuple[str, str], extra: dict) -> str:
    fields = {name: event[name] for name in order if name in event}
    fields.update({name: value for name, value in event.items() if name not in fields})
    fields.update(extra)
    return json.dumps(fields, separators=separators)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_lines_of_many_layouts_read_as_python_reads_them(tmp_path_factory: pytest.TempPathFactory,
                                                          data: st.DataObject) -> None:
    shape = Shape(data.draw(st.integers(40, 160)), seed=data.draw(st.integers(0, 10_000)), keys=2, processes=3,
                  broken=data.draw(st.booleans()), info_rate=data.draw(st.sampled_from([0.0, 0.05])), spec=False)
    directory = tmp_path_factory.mktemp("layouts")
    plain = generate(shape, str(directory / "plain.jsonl"))
    orders = [["type", "process", "f", "key", "value", "time"], ["time", "type", "f", "process", "value", "key"]]
    extras = [{}, {"index": 0}, {"node": "n1", "note": [1, {"a": None}]}, {"index": 1.5}]
    out = []
    for line in Path(plain).read_text().splitlines():
        event = json.loads(line)
        out.append(_layout_line(event, data.draw(st.sampled_from(orders)),
                                data.draw(st.sampled_from(LAYOUT_SEPARATORS)), data.draw(st.sampled_from(extras))))
    path = directory / "history.jsonl"
    path.write_text("\n".join(out) + "\n")
    expected = python_verdict(str(path))
    got = go_verdict(str(path))
    assert got is None or got == expected
