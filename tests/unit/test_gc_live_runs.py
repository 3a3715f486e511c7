"""`faultbed gc` never stops a live run it has no record of (another FAULTBED_STATE_DIR, a test's own).

Every process of a run carries its harness (FAULTBED_HARNESS=<pid>:<start>); a gc that
finds such a process by its FAULTBED_RUN but holds no record of the run stops it only
when that harness is gone. Without this, any `faultbed gc` run with a private state
directory (as tests do) stopped every other run on the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from faultbed.cluster.registry import HARNESS_ENV, RUN_ENV, process_start_time, run_env


def sleeper(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={**os.environ, **env})


def gc(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FAULTBED_STATE_DIR=str(tmp_path / "state"), FAULTBED_PORT_LOCKS=str(tmp_path / "ports"),
               DOCKER_HOST="unix:///nonexistent/docker.sock")
    return subprocess.run([sys.executable, "-m", "faultbed", "gc"], capture_output=True, text=True, timeout=120,
                          env=env)


def test_run_env_names_the_run_and_this_live_harness() -> None:
    env = run_env("abc123")
    assert env[RUN_ENV] == "abc123"
    assert env[HARNESS_ENV] == f"{os.getpid()}:{process_start_time(os.getpid())}"


def test_gc_without_the_record_spares_a_live_harness_and_stops_a_dead_ones_processes(tmp_path: Path) -> None:
    live = sleeper(run_env("teardown-live-run"))  # this test process is its live harness
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone_start = process_start_time(gone.pid)
    gone.wait()
    orphan = sleeper({RUN_ENV: "teardown-dead-run", HARNESS_ENV: f"{gone.pid}:{gone_start}"})
    try:
        done = gc(tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 10
        while orphan.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphan.poll() is not None, "the process of a run whose harness is gone is stopped"
        assert live.poll() is None, f"gc stopped a live run it had no record of:\n{done.stdout}"
    finally:
        for proc in (live, orphan):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
