"""Setup failures a user can cause end in one clear line, exit 3, nothing left running, and what was recorded kept."""

from __future__ import annotations

import os

import pytest

from faultbed.cluster import registry
from faultbed.cli import main
from tests.integration.conftest import processes_of_run

pytestmark = pytest.mark.integration


def _run(capsys, store, *args: str) -> tuple[int, list[str]]:
    code = main(["run", "--quiet", "--nodes", "3", "--time-limit", "5", "--store", str(store), *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, [line for line in err if not line.startswith("faultbed: raftkv") and
                  not line.startswith("faultbed: tests.integration.never_starts")]


def _runs_left_by_this_process() -> list[str]:
    own = os.getpid()
    return [r.run_id for r in registry.stale_runs(include_live=True) if r.pids and any(
        _parent(pid) == own for pid in r.pids)]


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def test_a_node_that_never_starts_is_one_line_exit_3_and_nothing_left(capsys, monkeypatch, tmp_path):
    code, lines = _run(capsys, tmp_path / "store", "--system", "tests.integration.never_starts:SYSTEM",
                       "--nemesis", "none")
    assert code == 3
    assert len(lines) == 1, lines
    assert "exited during startup" in lines[0] and "fatal: cannot open config" in lines[0], lines
    assert _runs_left_by_this_process() == []
    run_dir = (tmp_path / "store" / "latest").resolve()
    assert (run_dir / "spec.json").exists() and (run_dir / "schedule.json").exists()
    # the node named in the line kept its log (the others may have been stopped before they printed)
    named = lines[0].split("'s log ends")[0].rsplit(" ", 1)[-1]
    assert "fatal: cannot open config" in (run_dir / "nodes" / f"{named}.log").read_text(), named


def test_a_missing_toxiproxy_binary_is_one_line_exit_3(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FAULTBED_TOXIPROXY_SERVER", str(tmp_path / "no-such-toxiproxy"))
    code, lines = _run(capsys, tmp_path / "store")
    assert code == 3
    assert len(lines) == 1 and "toxiproxy-server not found" in lines[0] and "make setup" in lines[0], lines
    assert processes_of_run() == [] or _runs_left_by_this_process() == []


def test_a_worker_that_dies_mid_run_is_an_internal_error_with_its_history_kept(capsys, monkeypatch, tmp_path):
    from faultbed.crash import EXIT_INTERNAL, TRACEBACK_FILE
    from faultbed.history import read_history
    from faultbed.workloads.register import RegisterWorkload

    real_perform = RegisterWorkload.perform
    done: list[int] = []

    def dies_after_a_few(self, worker, op):
        if worker.index == 0 and len(done) >= 20:
            raise ZeroDivisionError("planted bug in a workload")
        done.append(1)
        real_perform(self, worker, op)

    monkeypatch.setattr(RegisterWorkload, "perform", dies_after_a_few)
    code, lines = _run(capsys, tmp_path / "store", "--time-limit", "30", "--nemesis", "none", "--rate", "50",
                       "--concurrency", "2")
    assert code == EXIT_INTERNAL  # never a verdict: the run did not do what it planned
    assert len(lines) == 1, lines
    assert lines[0].startswith("faultbed: internal error") and "planted bug in a workload" in lines[0]
    run_dir = (tmp_path / "store" / "latest").resolve()
    assert lines[0].rsplit("traceback: ", 1)[1] == str(run_dir / TRACEBACK_FILE)
    completed = [e for e in read_history(str(run_dir / "history.jsonl")) if e["type"] == "ok"]
    assert len(completed) >= 10  # what was recorded before the bug stays, checkable by `faultbed check`
    assert _runs_left_by_this_process() == []
