"""Ctrl-C and SIGTERM, once or repeatedly, at a real `faultbed run`: exit 130, history kept, nothing left running.

A second or third signal lands while the run is stopping its nodes and Toxiproxy;
it must be noted and ignored until everything is stopped (issue 17 found Toxiproxy
4/4 and nodes 2/4 left running by a second Ctrl-C within 0.3 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from faultbed.cluster.registry import STATE_DIR, process_start_time
from tests.integration.conftest import ROOT, faultbed_command, history_ops, processes_of_run, wait_for

pytestmark = pytest.mark.integration


def start_run(store: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(faultbed_command("run", "--nodes", "3", "--time-limit", "60", "--rate", "50",
                                             "--concurrency", "4", "--nemesis", "partition", "--seed", "3",
                                             "--quiet", "--store", str(store), *extra),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_record(store: Path) -> dict:
    """The run record (/tmp/faultbed-runs/<id>.json) of the one run in `store`, once it names all it started."""
    def found() -> dict | None:
        for name in os.listdir(STATE_DIR) if os.path.isdir(STATE_DIR) else ():
            try:
                data = json.loads(Path(STATE_DIR, name).read_text())
            except (OSError, ValueError):
                continue
            if str(data.get("run_dir", "")).startswith(str(store)) and \
                    {"toxiproxy", "n1", "n2", "n3"} <= set(data.get("processes", {})):
                return data
        return None
    return wait_for(found, 60, f"the run record of the run in {store}")


def alive(record: dict) -> list[str]:
    """The recorded processes of the run that still exist (same pid and kernel start time)."""
    return [f"{role} pid {p['pid']}" for role, p in record["processes"].items()
            if process_start_time(p["pid"]) is not None and process_start_time(p["pid"]) == p["start"]]


def interrupt(proc: subprocess.Popen[str], store: Path, signals: list[signal.Signals],
              interval: float) -> tuple[dict, str]:
    """Wait for the main phase, send `signals` `interval` apart; the run record and stderr."""
    try:
        record = run_record(store)
        run_dir = Path(record["run_dir"])
        wait_for(lambda: history_ops(run_dir) > 10, 60, "some completed operations")
        for k, sig in enumerate(signals):
            if k:
                time.sleep(interval)
            if proc.poll() is None:
                proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return record, err


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("interval", [0.1, 0.3, 1.0])
def test_repeated_ctrl_c_leaves_nothing_running_and_keeps_the_history(tmp_path: Path, count: int,
                                                                       interval: float) -> None:
    store = tmp_path / "store"
    proc = start_run(store)
    record, err = interrupt(proc, store, [signal.SIGINT] * count, interval)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert alive(record) == [], f"left running after {count} Ctrl-C {interval}s apart:\n{err}"
    assert processes_of_run(record["run_id"]) == []
    assert not Path(STATE_DIR, f"{record['run_id']}.json").exists(), "a run that stopped everything drops its record"
    if "everything stopped" not in err:  # a later signal may end the process after teardown, before the message
        assert "interrupted" in err, err
    assert history_ops(Path(record["run_dir"])) > 10, "the history recorded so far is kept"


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGTERM, signal.SIGTERM, signal.SIGINT]],
                         ids=["sigterm", "sigterm-sigterm-ctrl-c"])
def test_sigterm_exits_130_like_ctrl_c_and_leaves_nothing_running(tmp_path: Path,
                                                                   signals: list[signal.Signals]) -> None:
    store = tmp_path / "store"
    proc = start_run(store)
    record, err = interrupt(proc, store, signals, 0.1)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert alive(record) == [] and processes_of_run(record["run_id"]) == [], err
    if len(signals) == 1:
        assert "interrupted; everything stopped, history kept" in err, err
    assert history_ops(Path(record["run_dir"])) > 10
