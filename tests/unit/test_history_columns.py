"""A HistoryFile's columns (each event's kind, process, f and time, kept by its scan) stand for its
events: the pairs they give are history.pairs()'s, and stats and the report's points read from them
are what a pass over the events gives; where they cannot stand (a client event without a time, or
one beyond 64 bits, a view of part of the file) there are none, and where the pairing is malformed
they give none, so that a pass over the events says what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultbed.history import HistoryFile, pairs
from faultbed.report import scan
from tests.checkers.test_stats_stream import histories


@st.composite
def varied(draw: Any) -> list[dict[str, Any]]:
    """histories(), their processes now and then named by text, now and then a time beyond 64 bits."""
    events = draw(histories())
    if draw(st.booleans()):
        events = [{**e, "process": f"p{e['process']}"} if e["process"] != "nemesis" else e for e in events]
    if events and draw(st.integers(0, 9)) == 0:
        events[draw(st.integers(0, len(events) - 1))]["time"] = draw(st.sampled_from([2**63, -2**63 - 1, 2**70]))
    return events


def written(tmp_path: Path, events: list[dict[str, Any]]) -> str:
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return str(path)


def outcome(function: Any, *arguments: Any) -> Any:
    try:
        return function(*arguments)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=varied())
def test_the_columns_hold_each_event_and_pair_as_the_events_do(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    with HistoryFile(written(tmp_path, events)) as history:
        columns = history.columns()
        clients = [e for e in events if e["process"] != "nemesis"]
        timed = all("time" in e and -2**63 <= e["time"] < 2**63 for e in clients)
        assert (columns is not None) == timed
        if events:  # a view of part of the file has none
            assert history[1:].columns() is None and history[:-1].columns() is None
        if columns is None:
            return
        names = columns.f_names
        assert [names[f] for f in columns.fs] == [e["f"] for e in events]
        assert [t for t, e in zip(columns.times, events) if e["process"] != "nemesis"] == [e["time"] for e in clients]
        ids: dict[Any, int] = {}
        assert list(columns.processes) == [-1 if e["process"] == "nemesis" else ids.setdefault(e["process"], len(ids))
                                           for e in events]
        expected = outcome(lambda: [(number, invoke["index"], completion["index"] if completion else -1)
                                    for number, invoke, completion in pairs(events)])
        paired = columns.pairs()
        if isinstance(expected, str):  # pairs() says what is wrong; the columns give nothing
            assert expected.startswith("HistoryError") and paired is None
        else:  # the index is the place here, and a number the rank of its invocation's place
            assert paired is not None
            assert list(zip(*paired)) == [(invoke, completion) for _, invoke, completion in expected]
            ranks = {place: rank for rank, place in enumerate(sorted(paired[0]))}
            assert [ranks[invoke] for invoke in paired[0]] == [number for number, _, _ in expected]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=varied())
def test_the_report_reads_the_same_points_faults_and_origin_from_the_columns(tmp_path: Path,
                                                                             events: list[dict[str, Any]]) -> None:
    expected = outcome(scan, events)
    with HistoryFile(written(tmp_path, events)) as history:
        found = outcome(scan, history)
    assert found == expected
    if not isinstance(expected, str):
        assert list(found.points) == list(expected.points) and found.points.names == expected.points.names


def test_the_last_heal_and_the_oks_after_it_are_found_in_the_columns(tmp_path: Path) -> None:
    events = [{"type": "invoke", "process": 0, "f": "heal", "time": 1},  # a client's f may be named heal too
              {"type": "info", "process": "nemesis", "f": "heal", "time": 2, "ready": False},
              {"type": "ok", "process": 0, "f": "heal", "time": 3},
              {"type": "info", "process": "nemesis", "f": "heal", "time": 4, "ready": False},
              {"type": "invoke", "process": 0, "f": "read", "time": 5},
              {"type": "fail", "process": 0, "f": "read", "time": 6}]
    with HistoryFile(written(tmp_path, events)) as history:
        columns = history.columns()
        assert columns is not None and columns.last_nemesis("heal") == 3 and columns.last_nemesis("kill") is None
        assert columns.client_ok_after(1) and not columns.client_ok_after(3) and columns.first_invocation() == 0
