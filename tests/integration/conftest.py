"""Helpers for tests that run `faultbed` as a user would: a real subprocess, real clusters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faultbed.cluster.registry import RUN_ENV

ROOT = Path(__file__).resolve().parents[2]


def faultbed_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "faultbed", *args]


def run_faultbed(*args: str, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_bounded(faultbed_command(*args), timeout, cwd=cwd or ROOT)


TEARDOWN_SECONDS = 120.0  # a stopped run's own teardown: containers, Toxiproxy, nodes


def run_bounded(command: list[str], timeout: float, cwd: Path | str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """subprocess.run with a budget that ends the way a user's Ctrl-C does: past `timeout` the
    process gets SIGTERM and its own teardown (subprocess.run would SIGKILL it, leaving its
    containers and nodes to the next tests on this worker), then the test fails with its output."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                          env=env) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                out, err = proc.communicate(timeout=TEARDOWN_SECONDS)
                ended = f"stopped by SIGTERM (exit {proc.returncode})"
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                ended = f"killed: its teardown took over {TEARDOWN_SECONDS:.0f} s"
            pytest.fail(f"{' '.join(command[2:5])} ran past its budget of {timeout:.0f} s and was {ended}\n"
                        f"{out[-4000:]}{err[-4000:]}", pytrace=False)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def processes_of_run(run_id: str | None = None) -> list[int]:
    """Pids whose environment carries FAULTBED_RUN (of `run_id`, or of any run)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(f"{RUN_ENV}=".encode()):
                if run_id is None or item.decode().endswith(run_id):
                    found.append(int(entry))
    return found


def processes_with(marker: str) -> list[int]:
    """Pids whose command line carries `marker` (a program one test started, with a unique argument)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def history_ops(run_dir: Path) -> int:
    path = run_dir / "history.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if '"ok"' in line)


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"
