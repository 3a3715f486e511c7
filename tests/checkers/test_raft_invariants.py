"""raft-invariants on hand-written traces: one valid and one violating trace per invariant,
and the checker as a run sees it (traces in <run>/data/<node>/, found through the system's traits)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faultbed.checkers.compose import system_checkers
from faultbed.checkers.raft import RAFT_INVARIANTS, Line, check_traces, result_for
from faultbed.spec import TestSpec


class Trace:
    """One node's trace, written record by record with increasing times."""

    clock = 0

    def __init__(self, node: str, log: list[tuple[int, int, str]] = ((1, 0, "noop"),)) -> None:  # type: ignore[assignment]
        self.node = node
        self.records: list[dict[str, Any]] = []
        self.add("start", log=[list(e) for e in log], commit=1)

    def add(self, event: str, **fields: Any) -> "Trace":
        Trace.clock += 1
        self.records.append({"time": Trace.clock, "event": event, **fields})
        return self

    def leader(self, term: int) -> "Trace":
        return self.add("term", term=term, vote=self.node).add("role", role="leader", term=term)

    def follower(self, term: int, vote: str | None = None) -> "Trace":
        return self.add("term", term=term, vote=vote).add("role", role="follower", term=term)

    def append(self, index: int, term: int, digest: str) -> "Trace":
        return self.add("append", index=index, term=term, digest=digest)

    def commit(self, index: int, term: int, role: str = "follower") -> "Trace":
        return self.add("commit", index=index, term=term, role=role)

    def lines(self) -> list[Line]:
        return [Line(self.node, i, r) for i, r in enumerate(self.records, 1)]


def violations(*traces: Trace) -> list[str]:
    return [v.invariant for v in check_traces({t.node: t.lines() for t in traces})]


def replicated(term: int = 1) -> tuple[Trace, Trace, Trace]:
    """n1 leads `term` and commits entries 2 and 3 on all three nodes."""
    n1, n2, n3 = Trace("n1").leader(term), Trace("n2").follower(term, "n1"), Trace("n3").follower(term, "n1")
    for t in (n1, n2, n3):
        t.append(2, term, "a").append(3, term, "b")
    n1.commit(3, term, "leader")
    n2.commit(3, term)
    n3.commit(3, term)
    return n1, n2, n3


def test_a_correct_run_violates_nothing() -> None:
    n1, n2, n3 = replicated()
    for t in (n1, n2, n3):
        t.add("apply", index=2, term=1, digest="a").add("apply", index=3, term=1, digest="b")
    n2.leader(2).append(4, 2, "noop2").commit(3, 2, "leader")  # a new leader with the whole committed log
    assert violations(n1, n2, n3) == []


# -- election safety ---------------------------------------------------------
def test_election_safety_one_leader_per_term_is_fine_even_if_it_returns() -> None:
    n1 = Trace("n1").leader(1).follower(1).add("role", role="leader", term=1)
    assert violations(n1, Trace("n2").follower(1, "n1").leader(2)) == []


def test_election_safety_two_leaders_in_one_term() -> None:
    n2, n1 = Trace("n2").leader(3), Trace("n1").leader(3)  # n1 is replayed first, but led later
    [found] = check_traces({"n1": n1.lines(), "n2": n2.lines()})
    assert found.invariant == "election-safety" and found.node == "n1" and found.time == n1.records[-1]["time"]
    assert {line.node for line in found.lines} == {"n1", "n2"}


# -- log matching ------------------------------------------------------------
def test_log_matching_different_uncommitted_entries_are_fine() -> None:
    n1, n2 = Trace("n1").leader(1).append(2, 1, "a"), Trace("n2").leader(2).append(2, 2, "x")
    assert violations(n1, n2) == []


def test_log_matching_different_entries_committed_at_one_index() -> None:
    n1 = Trace("n1").leader(1).append(2, 1, "a").commit(2, 1, "leader")
    n2 = Trace("n2").leader(2).append(2, 2, "x").commit(2, 2, "leader")
    assert "log-matching" in violations(n1, n2)


# -- leader completeness -----------------------------------------------------
def test_leader_completeness_truncating_and_reappending_the_same_entries_is_fine() -> None:
    n1, n2, n3 = replicated()
    n3.add("truncate", index=2).append(2, 1, "a").append(3, 1, "b").commit(3, 1)
    assert violations(n1, n2, n3) == []


def test_leader_completeness_a_committed_entry_truncated_away() -> None:
    n1, n2, n3 = replicated()
    n3.add("truncate", index=3).commit(3, 1)
    assert violations(n1, n2, n3) == ["leader-completeness"]


def test_leader_completeness_a_leader_without_a_committed_entry() -> None:
    n1, n2, n3 = replicated()
    n4 = Trace("n4").follower(1).append(2, 1, "a").leader(2)  # lacks entry 3, committed in term 1
    assert violations(n1, n2, n3, n4) == ["leader-completeness"]


def test_leader_completeness_with_a_sparse_log_at_election() -> None:
    """A log whose indexes are far apart (a trace of another system's making) is copied at the
    election without a slot for every index between, and still judged."""
    n1, n2, n3 = replicated()
    far = 10 ** 12
    n4 = Trace("n4").follower(1).append(2, 1, "a").append(far, 1, "z").leader(2)  # lacks entry 3
    n5 = Trace("n5").follower(1).append(2, 1, "a").append(3, 1, "b").append(far, 1, "z").leader(3)
    assert violations(n1, n2, n3, n4, n5) == ["leader-completeness"]


def test_traces_are_read_once_as_they_are_replayed() -> None:
    """check_traces takes each node's records as an iterator (a long run's traces are never all
    held) and reads each once."""
    n1, n2, n3 = replicated()
    n3.add("truncate", index=3).commit(3, 1)
    taken: list[str] = []

    def records(trace: Trace) -> Iterator[Line]:
        for line in trace.lines():
            taken.append(trace.node)
            yield line

    found = check_traces({t.node: records(t) for t in (n1, n2, n3)})
    assert [v.invariant for v in found] == ["leader-completeness"]
    assert len(taken) == sum(len(t.records) for t in (n1, n2, n3))
    result = result_for({t.node: records(t) for t in (n1, n2, n3)}, [])
    assert result.details["nodes"] == {t.node: len(t.records) for t in (n1, n2, n3)}


# -- state machine safety ----------------------------------------------------
def test_state_machine_safety_same_entries_applied() -> None:
    n1, n2 = Trace("n1").add("apply", index=2, term=1, digest="a"), Trace("n2").add("apply", index=2, term=1, digest="a")
    assert violations(n1, n2) == []


def test_state_machine_safety_different_entries_applied_at_one_index() -> None:
    n1, n2 = Trace("n1").add("apply", index=2, term=1, digest="a"), Trace("n2").add("apply", index=2, term=2, digest="z")
    assert violations(n1, n2) == ["state-machine-safety"]


# -- commit index ------------------------------------------------------------
def test_commit_monotonic_restart_may_start_lower() -> None:
    n1, n2, n3 = replicated()
    n3.add("start", log=[[1, 0, "noop"], [2, 1, "a"], [3, 1, "b"]], commit=1).commit(2, 1)
    assert violations(n1, n2, n3) == []


def test_commit_monotonic_commit_index_going_back() -> None:
    n1, n2, n3 = replicated()
    n3.commit(2, 1)
    assert violations(n1, n2, n3) == ["commit-monotonic"]


def test_current_term_commit_an_earlier_terms_entries_committed_with_one_of_the_leaders_own() -> None:
    n1 = Trace("n1", log=((1, 0, "noop"), (2, 1, "a"), (3, 1, "b"))).leader(2).append(4, 2, "noop2")
    n1.commit(4, 2, "leader")  # 2 and 3 (term 1) go with 4 (term 2): Raft's way
    follower = Trace("n2", log=((1, 0, "noop"), (2, 1, "a"))).follower(2, "n1").commit(2, 2)  # a follower may
    assert violations(n1, follower) == []


def test_current_term_commit_a_leader_counting_replicas_of_an_earlier_terms_entry() -> None:
    """Figure 8 of the Raft paper (pysyncobj #169; raftkv --bug old-term-commit): caught when it
    happens, whether or not a later leader overwrites the entry."""
    n1 = Trace("n1", log=((1, 0, "noop"), (2, 1, "a"), (3, 1, "b"))).leader(2).append(4, 2, "noop2")
    n1.commit(3, 2, "leader")
    [found] = check_traces({"n1": n1.lines()})
    assert found.invariant == "current-term-commit" and found.node == "n1"
    assert found.message == "n1, leader in term 2, committed up to index 3, an entry of term 1"
    assert [line.line for line in found.lines] == [1, 5]  # the entry (held since the start) and the commit


# -- match index -------------------------------------------------------------
def test_match_monotonic_resets_with_a_new_term() -> None:
    n1 = Trace("n1").leader(1).add("match", peer="n2", index=5, term=1).leader(2)
    n1.add("match", peer="n2", index=0, term=2).add("match", peer="n2", index=3, term=2)
    assert violations(n1) == []


def test_match_monotonic_match_index_going_back_within_a_term() -> None:
    n1 = Trace("n1").leader(1).add("match", peer="n2", index=5, term=1).add("match", peer="n2", index=4, term=1)
    [found] = check_traces({"n1": n1.lines()})
    assert found.invariant == "match-monotonic" and [line.line for line in found.lines] == [4, 5]


# -- the checker in a run ------------------------------------------------------
def write_run(run_dir: Path, traces: list[Trace]) -> None:
    for t in traces:
        (run_dir / "data" / t.node).mkdir(parents=True)
        text = "".join(json.dumps(r) + "\n" for r in t.records)
        (run_dir / "data" / t.node / "raft.trace.jsonl").write_text(text + '{"time": 9, "ev')  # a cut last line


def test_the_checker_reads_every_nodes_trace_and_names_the_first_violation(tmp_path: Path) -> None:
    n1, n2, n3 = replicated()
    n2.commit(1, 1)
    write_run(tmp_path, [n1, n2, n3])
    spec = TestSpec(system="raftkv", nodes=3)
    assert system_checkers(spec, str(tmp_path)) == ("raft-invariants",)
    result = RAFT_INVARIANTS.check([], spec, str(tmp_path))
    assert result.valid is False and result.details["nodes"] == {"n1": 6, "n2": 7, "n3": 6}
    first = result.details["first_violation"]
    assert first["invariant"] == "commit-monotonic" and first["node"] == "n2"
    assert [line["line"] for line in first["lines"]] == [6, 7]


def test_the_first_violation_falls_on_the_historys_clock_where_the_run_noted_it(tmp_path: Path) -> None:
    """Traces are stamped by the machine's clock (Unix ns), the history by its own: the run notes
    in origin.json when the history's time 0 was, so the first violation gets a time like every
    checker's first anomaly (ms since the first client invocation: shrink cuts the run after it)."""
    from faultbed import store

    n1, n2, n3 = replicated()
    n2.commit(1, 1)
    write_run(tmp_path, [n1, n2, n3])
    history = [{"type": "info", "process": "nemesis", "f": "start-partition", "time": 1_000},
               {"type": "invoke", "process": 0, "f": "read", "key": "k", "time": 2_000_000}]
    spec = TestSpec(system="raftkv", nodes=3)
    untimed = RAFT_INVARIANTS.check(history, spec, str(tmp_path))  # no origin.json: a run from before
    assert untimed.valid is False and "first_anomaly_ms" not in untimed.details
    violated = untimed.details["first_violation"]["time"]
    store.write_json(str(tmp_path), store.ORIGIN, {"host": "h", "path": str(tmp_path)})
    store.note_clock(str(tmp_path), violated - 2_000_000 - 7_250_000_000)  # 7.25 s after the first invocation
    timed = RAFT_INVARIANTS.check(history, spec, str(tmp_path))
    assert timed.details["first_anomaly_ms"] == 7250.0 and timed.details["first_anomaly"] == {
        "time_ms": 7250.0, "kind": "commit-monotonic", "about": untimed.details["first_violation"]["message"],
        "node": "n2"}
    assert timed.summary == f"{untimed.summary}, the first at 7.25 s"
    from faultbed.commands.run import describe_operation
    from faultbed.report import first_anomalies

    said = f"commit-monotonic: {untimed.details['first_violation']['message']} (node n2)"
    assert describe_operation(timed.details["first_anomaly"]) == said  # `faultbed run`'s line
    assert first_anomalies({"results": [timed.to_json()]}, 100.0) == [(107.25, f"raft-invariants: {said}")]
    assert "first_anomaly_ms" not in RAFT_INVARIANTS.check(history, TestSpec(system="raftkv", nodes=3, backend="ssh"),
                                                           str(tmp_path)).details  # a remote host's own clock
    store.note_clock(str(tmp_path), violated + 1)  # the violation came before the clients' first operation
    assert RAFT_INVARIANTS.check(history, spec, str(tmp_path)).details["first_anomaly_ms"] == 0.0


def test_a_run_notes_its_historys_clock_when_its_clients_start(tmp_path: Path) -> None:
    from faultbed import store
    from faultbed.history import HistoryWriter

    store.write_json(str(tmp_path), store.ORIGIN, {"host": "h", "path": str(tmp_path)})
    with HistoryWriter(str(tmp_path / "history.jsonl")) as history:
        history.start_clock()
        assert history.unix_origin_ns is not None
        store.note_clock(str(tmp_path), history.unix_origin_ns)
        event = history.invoke(0, "read", "k")
    noted = store.read_origin(str(tmp_path))
    assert noted["host"] == "h" and abs(noted[store.CLOCK] + event["time"] - time.time_ns()) < 5e9


def test_a_clock_that_cannot_be_noted_does_not_end_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    from faultbed import store

    store.write_json(str(tmp_path), store.ORIGIN, {"host": "h", "path": str(tmp_path)})

    def full(*args: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_json", full)
    store.note_clock(str(tmp_path), 123)
    assert store.read_origin(str(tmp_path)) == {"host": "h", "path": str(tmp_path)}
    assert "cannot note the history's clock" in caplog.text and "No space left on device" in caplog.text


def test_a_run_without_traces_is_unknown_and_a_bare_history_gets_no_raft_check(tmp_path: Path) -> None:
    spec = TestSpec(system="raftkv", nodes=3)
    assert system_checkers(spec, str(tmp_path)) == ()  # no data directories: a re-checked history
    (tmp_path / "data").mkdir()
    result = RAFT_INVARIANTS.check([], spec, str(tmp_path))
    assert result.valid == "unknown" and result.details["missing"] == ["n1", "n2", "n3"]
    assert result_for({}, []).summary == "no Raft trace found"


@pytest.mark.parametrize("system", ["raftkv", "broker"])
def test_raftkv_and_broker_declare_their_trace(system: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert system_checkers(TestSpec(system=system), str(tmp_path)) == ("raft-invariants",)


def test_the_report_shows_the_violating_trace_lines() -> None:
    from faultbed.report import _checkers_section

    n1, n2 = Trace("n1").leader(3), Trace("n2").leader(3)
    result = result_for({"n1": n1.lines(), "n2": n2.lines()}, [])
    html = _checkers_section({"results": [result.to_json()]})
    assert "election-safety on n2: two leaders in term 3" in html
    assert html.count("<td>n1</td><td>3</td>") == 1 and html.count("<td>n2</td><td>3</td>") == 1


def test_faultbed_check_of_a_run_directory_runs_raft_invariants_on_its_traces(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`faultbed check RUN_DIR` judges a run as the run itself was judged: its history by the
    workload's checkers and its nodes' traces (RUN_DIR/data/) by raft-invariants."""
    from faultbed.cli import main
    from faultbed.history import HistoryWriter

    def run_dir(name: str, traces: tuple[Trace, ...]) -> Path:
        path = tmp_path / name
        path.mkdir()
        write_run(path, list(traces))
        (path / "spec.json").write_text(json.dumps(TestSpec(system="raftkv", nodes=3).to_json()))
        with HistoryWriter(str(path / "history.jsonl")) as history:
            history.complete(history.invoke(0, "write", "k1", 1), "ok", 1)
            history.complete(history.invoke(1, "read", "k1"), "ok", 1)
        return path

    n1, n2, n3 = replicated()
    two_leaders = run_dir("two-leaders", (n1, n2.add("role", role="leader", term=1), n3))
    fine = run_dir("fine", replicated(term=2))
    assert main(["check", str(two_leaders)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID ") and "raft-invariants: INVALID" in out and "election-safety" in out, out
    assert main(["check", str(fine), "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert [(r["checker"], r["valid"]) for r in line["results"]] == [
        ("linearizable", True), ("raft-invariants", True), ("stats", True)], line


def reference_leader_completeness(checking: Any) -> None:
    """check_leader_completeness as first written: every election against every entry committed before it."""
    for line, entries, base in checking.elections:
        term = int(line.record["term"])
        for earlier, committed in sorted(checking.committed_in_term.items()):
            if earlier >= term:
                break
            for index, (entry, at) in sorted(committed.items()):
                if at.time < line.time and index >= base and entries.get(index) != entry:
                    checking.violate("leader-completeness", line, f"{line.node} became leader of term {term} "
                                     f"without entry {index} committed in term {earlier}", at)
                    break


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_leader_completeness_looks_from_each_elected_log_s_base_on_and_finds_what_a_look_at_everything_finds(
        data: st.DataObject) -> None:
    from faultbed.checkers.raft import Checking, LogCopy, NodeLog, check_leader_completeness

    def line(time: int, **record: Any) -> Line:
        return Line(data.draw(st.sampled_from(["n1", "n2", "n3"])), time, {"time": time, **record})

    entries = st.tuples(st.integers(1, 4), st.sampled_from(["a", "b"]))
    checkings = [Checking(), Checking()]
    for term in data.draw(st.sets(st.integers(1, 6), max_size=4)):
        committed = {index: (entry, line(time)) for index, entry, time in data.draw(st.lists(
            st.tuples(st.integers(1, 30), entries, st.integers(0, 100)), max_size=12))}
        for checking in checkings:
            checking.committed_in_term[term] = committed
    for _ in range(data.draw(st.integers(0, 5))):
        log = NodeLog(entries={index: (entry, line(0)) for index, entry in data.draw(
            st.dictionaries(st.integers(1, 30), entries, max_size=20)).items()})
        election = (line(data.draw(st.integers(0, 100)), term=data.draw(st.integers(1, 7))), LogCopy(log),
                    data.draw(st.integers(0, 31)))
        for checking in checkings:
            checking.elections.append(election)
    check_leader_completeness(checkings[0])
    reference_leader_completeness(checkings[1])
    assert checkings[0].violations == checkings[1].violations
