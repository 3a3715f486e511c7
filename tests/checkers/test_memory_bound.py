"""A checker written in Python is kept within the check's memory bound (checkers/memory.py), as
Go's search keeps itself: past it, the checker is stopped and its verdict is unknown with the reason."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import pytest

from faultbed import memory
from faultbed.checkers.result import UNKNOWN, Result, check_safe
from faultbed.cli import main


class Hoard:
    """Holds a megabyte more at every step, for ever; swallows every Exception, as careless code does."""

    name = "hoard"
    description = "holds memory without end"

    def check(self, history: Sequence[dict[str, Any]], spec: Any, out_dir: str | None) -> Result:
        held = []
        try:
            while True:
                held.append(bytearray(1 << 20))  # zeroed, so resident
        except Exception:
            return Result(self.name, True)


class Modest:
    name = "modest"
    description = "holds 20 MB for a moment"

    def check(self, history: Sequence[dict[str, Any]], spec: Any, out_dir: str | None) -> Result:
        held = [bytearray(1 << 20) for _ in range(20)]
        time.sleep(0.05)  # long enough for the bound to look
        return Result(self.name, len(held) == 20)


def test_a_checker_past_the_limit_is_stopped_unknown_with_the_reason_and_its_memory_handed_back() -> None:
    threads = threading.active_count()
    before = memory.resident_mb()
    limit = before + 150
    result = check_safe(Hoard(), [], None, None, memory_limit_mb=limit)  # type: ignore[arg-type]
    assert result.valid == UNKNOWN
    assert result.details["reason"] == f"memory limit of {limit:.0f} MB reached" == result.summary
    # sampled every 10 ms, raised GRACE_S later (it never reads: no check_bound): soon, though this
    # one allocates gigabytes a second
    assert limit < result.details["peak_rss_mb"] < limit + 400
    assert memory.resident_mb() < before + 60  # what it held is gone
    assert threading.active_count() == threads  # and its watcher


def test_a_checker_within_the_limit_keeps_its_verdict_and_nothing_arrives_later() -> None:
    threads = threading.active_count()
    limit = memory.resident_mb() + 200
    assert check_safe(Modest(), [], None, None, memory_limit_mb=limit) == Result("modest", True)  # type: ignore[arg-type]
    assert threading.active_count() == threads
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:  # Python instructions, where a stray exception would arrive
        sum(range(100))


def test_a_checker_that_bounds_itself_runs_without_the_bound() -> None:
    class InGo(Modest):
        bounds_its_memory = True

    assert check_safe(InGo(), [], None, None, memory_limit_mb=1).valid is True  # type: ignore[arg-type]


def test_the_machine_floor_stops_a_checker_too(monkeypatch: pytest.MonkeyPatch) -> None:
    available = memory.available_mb()
    assert available is not None
    monkeypatch.setenv(memory.FLOOR_ENV, str(2 * available))  # above all the machine has
    monkeypatch.setattr(memory, "FLOOR_HOLD_MB", 0.0)
    result = check_safe(Hoard(), [], None, None, memory_limit_mb=memory.resident_mb() + 2000)  # type: ignore[arg-type]
    assert result.valid == UNKNOWN
    assert result.details["reason"].startswith("the machine's available memory fell to ")
    assert f"(the floor: {2 * available:.0f} MB, $FAULTBED_CHECK_MEMORY_FLOOR_MB)" in result.details["reason"]


def test_a_bound_with_no_limit_and_no_floor_watches_nothing() -> None:
    with memory.Bound(0, 0) as bound:
        held = [bytearray(1 << 20) for _ in range(50)]
        time.sleep(0.03)
    assert bound.reason is None and bound.peak_mb == 0 and len(held) == 50


def test_a_runs_python_checkers_are_stopped_at_check_s_memory_limit(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    """`faultbed check RUN_DIR --memory-limit`: the queue checker (Python) stops at it, exit 2 with the
    reason on the line; without it, the same run is valid."""
    from faultbed.spec import TestSpec
    from tests.checkers.test_queue import History as QueueHistory

    history = QueueHistory()
    for message in range(3000):  # some tenths of a second of checking: the bound samples every 10 ms
        history.publish(message % 5, f"{message % 5}-{message}")
        history.deliver(5 + message % 5, f"{message % 5}-{message}")
    history.drained()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "spec.json").write_text(json.dumps(TestSpec(system="broker", workload="queue").to_json()))
    (run_dir / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in history.events))

    code = main(["check", str(run_dir), "--memory-limit", "1"])
    out = capsys.readouterr().out
    assert code == 2, out
    assert out.startswith("unknown ") and "queue: unknown (memory limit of 1 MB reached)" in out
    assert main(["check", str(run_dir)]) == 0
    assert "queue: valid (3000 messages delivered)" in capsys.readouterr().out


def test_a_runs_own_check_keeps_its_python_checkers_within_the_bound(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    """`faultbed run` checks through run_checkers: the limit ($FAULTBED_CHECK_MEMORY_MB) holds there too."""
    from bench.queue_check import write_history
    from faultbed.checkers.compose import run_checkers
    from faultbed.history import HistoryFile
    from faultbed.spec import TestSpec

    path = tmp_path / "history.jsonl"
    write_history(path, 3000)
    spec = TestSpec(system="broker", workload="queue")
    monkeypatch.setenv(memory.MEMORY_ENV, "1")
    with HistoryFile(str(path)) as events:
        queue = run_checkers(["queue"], events, spec, None)[0]
    assert (queue.checker, queue.valid, queue.summary) == ("queue", UNKNOWN, "memory limit of 1 MB reached")
    monkeypatch.delenv(memory.MEMORY_ENV)
    with HistoryFile(str(path)) as events:
        assert run_checkers(["queue"], events, spec, None)[0].valid is True


def test_a_long_read_looks_itself_between_blocks_where_the_watcher_may_never_get_the_gil(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Reading a history lets the GIL go at every block and takes it back at once, which can keep the
    watching thread from sampling at all; HistoryFile's reads call check_bound between blocks. (The
    watcher is kept from sampling here, so only check_bound can stop the read.)"""
    from bench.queue_check import write_history
    from faultbed.history import HistoryFile

    path = tmp_path / "history.jsonl"
    write_history(path, 3000)
    monkeypatch.setattr(memory, "SAMPLE_S", 60.0)  # the watcher's first sample: in a minute
    memory.check_bound()  # outside a Bound: nothing
    read = 0
    with HistoryFile(str(path)) as events, pytest.raises(memory.OutOfMemoryBound):
        with memory.Bound(1, 0) as bound:
            for _ in events:
                read += 1
    assert bound.reason == "memory limit of 1 MB reached"
    assert read < len(events) / 10  # stopped at its first blocks, not at its end


def test_raft_invariants_trace_reading_looks_itself_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from faultbed.checkers.raft import iter_trace

    trace = tmp_path / "raft-trace.jsonl"
    trace.write_text("".join(json.dumps({"event": "term", "term": n}) + "\n" for n in range(10_000)))
    monkeypatch.setattr(memory, "SAMPLE_S", 60.0)
    assert len(list(iter_trace(str(trace), "n1"))) == 10_000  # outside a Bound: read whole
    read = 0
    with pytest.raises(memory.OutOfMemoryBound), memory.Bound(1, 0):
        for _ in iter_trace(str(trace), "n1"):
            read += 1
    assert read == 4095  # stopped at its first look


def test_a_search_stopped_at_the_limit_hands_its_memory_back_before_the_next_checker(tmp_path: Path) -> None:
    """Go's collector keeps a finished search's pages for minutes, counted in the process's resident
    set: a hot key's search stopped at the limit, then a Python checker under the same limit, was
    stopped for memory Go held (a nats run, 4 GB: stats unknown). The search hands it back first."""
    from bench.histories import Shape, generate
    from faultbed.checkers.formats import import_faultbed
    from faultbed.checkers.linearizable import check_operations

    # twenty clients on one key: porcupine's search runs out of any memory it is given
    path = generate(Shape(6000, seed=1, keys=1, processes=20), str(tmp_path / "history.jsonl"))
    operations = import_faultbed(path).ops
    limit = memory.resident_mb() + 600
    searched = check_operations(operations, "kv", timeout=60, memory_limit_mb=limit)
    assert (searched.valid, searched.details["reason"]) == (UNKNOWN, memory.limit_reason(limit)), searched.details
    assert memory.resident_mb() < limit - 400  # what the search held is the machine's again
    assert check_safe(Modest(), [], None, None, memory_limit_mb=limit) == Result("modest", True)  # type: ignore[arg-type]


def test_the_cycle_collector_is_paused_while_any_thread_is_inside_and_left_as_it_was() -> None:
    import gc

    assert gc.isenabled()
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with memory.cycles_uncollected():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    with memory.cycles_uncollected():
        assert not gc.isenabled()
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other thread is still inside
    leave.set()
    thread.join()
    assert gc.isenabled()
    gc.disable()
    try:
        with memory.cycles_uncollected():
            pass
        assert not gc.isenabled()  # paused before: left paused
    finally:
        gc.enable()
