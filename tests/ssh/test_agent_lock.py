"""One run at a time on a host: the agent's lock (<workdir>/lock, an flock held by a recorded process of the
run), run here on this machine as the ssh backend runs it on a host (`python3 - VERB ARGS` with agent.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from faultbed.cluster.ssh.remote import AGENT_PATH


def agent(*args: str) -> Any:
    result = subprocess.run([sys.executable, "-S", AGENT_PATH, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def prepare(workdir: Path, run_id: str) -> Any:
    return agent("prepare", json.dumps({"run_dir": str(workdir / run_id), "packages": [], "ports": [],
                                        "harness": {"run_id": run_id, "pid": 4242, "hostname": "ctl"}}))


def holder_of(run_dir: Path) -> dict[str, Any]:
    entries = [json.loads(line) for line in (run_dir / "processes.jsonl").read_text().splitlines()]
    [lock] = [e for e in entries if e["name"] == "lock"]
    return lock


def kill_outright(process: dict[str, Any]) -> None:
    """SIGKILL a recorded process and wait until it is gone (a zombie counts: its files are closed)."""
    os.kill(process["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while agent("state", str(process["pid"]), str(process["start"])) != ["dead"]:
        assert time.monotonic() < deadline, "a SIGKILLed process did not die"
        time.sleep(0.05)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    workdir = tmp_path / "workdir"
    yield workdir
    for run in workdir.glob("run-*"):  # whatever a failed assertion left: its holder is stopped
        agent("cleanup", str(run))


def test_a_second_run_is_refused_while_the_first_holds_the_host_and_may_start_once_it_is_cleaned_up(
        workdir: Path) -> None:
    first = prepare(workdir, "run-a")
    assert "busy" not in first and (workdir / "lock").exists()
    holder = holder_of(workdir / "run-a")
    second = prepare(workdir, "run-b")
    assert second["busy"]["harness"] == {"run_id": "run-a", "pid": 4242, "hostname": "ctl"}, second
    assert not (workdir / "run-b").exists(), "a refused run makes nothing on the host"
    # the end of the run's processes (stop-all, as at teardown) keeps the host: its /etc/hosts block and
    # directory are still there
    assert agent("stop-all", str(workdir / "run-a"), "1") == {"stopped": [], "failed": []}
    assert "busy" in prepare(workdir, "run-b")
    answer = agent("cleanup", str(workdir / "run-a"))
    assert answer["failed"] == [] and answer["stopped"] == [f"lock (pid {holder['pid']})"], answer
    assert sorted(p.name for p in workdir.iterdir()) == [], "the holder removed the lock file as it went"
    assert "busy" not in prepare(workdir, "run-b")
    agent("cleanup", str(workdir / "run-b"))


def test_a_holder_killed_outright_frees_the_host_and_gc_removes_the_file_it_left(workdir: Path) -> None:
    assert "busy" not in prepare(workdir, "run-a")
    holder = holder_of(workdir / "run-a")
    kill_outright(holder)
    assert (workdir / "lock").exists(), "a SIGKILLed holder cannot remove its file"
    assert "busy" not in prepare(workdir, "run-b"), "but no one holds it"
    assert "busy" in prepare(workdir, "run-c")
    agent("cleanup", str(workdir / "run-b"))
    agent("cleanup", str(workdir / "run-a"))
    assert "busy" not in prepare(workdir, "run-d")
    kill_outright(holder_of(workdir / "run-d"))
    agent("cleanup", str(workdir / "run-d"))
    assert [p.name for p in workdir.iterdir()] == ["lock"]
    agent("drop-cache", str(workdir))
    assert list(workdir.iterdir()) == [], "gc's drop-cache removes a lock file no one holds"
