"""Helpers for end-to-end tests: `faultbed` as a user runs it, real clusters, no leftovers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHORT_RUN = ["--nodes", "3", "--time-limit", "4", "--rate", "50", "--concurrency", "4", "--nemesis-interval", "1.5",
             "--quiet"]


def faultbed(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`faultbed ARGS` in a subprocess, from the repository root."""
    return subprocess.run([sys.executable, "-m", "faultbed", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def run_dir_of(done: subprocess.CompletedProcess[str]) -> str:
    """The results directory a `faultbed run` printed."""
    for line in done.stdout.splitlines():
        if line.startswith("results: "):
            return line.removeprefix("results: ").strip()
    raise AssertionError(f"no results line in:\n{done.stdout}\n{done.stderr}")


def short_run(store: str, *extra: str, expect_exit: int, seeds: tuple[int, ...] = (3, 4, 5)) -> str:
    """A 4-second 3-node raftkv run; tries the seeds until the exit code is `expect_exit`.

    The results of the other attempts are removed, so the store holds exactly one run per call.
    """
    outputs = []
    for seed in seeds:
        done = faultbed("run", *SHORT_RUN, "--store", store, "--seed", str(seed), *extra)
        if done.returncode == expect_exit:
            return run_dir_of(done)
        outputs.append(f"seed {seed}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        if "results: " in done.stdout:
            shutil.rmtree(run_dir_of(done))
    raise AssertionError(f"no run exited {expect_exit}:\n" + "\n".join(outputs))


def own_cluster_processes(store: str) -> list[int]:
    """Node processes whose command line names `store` (they would be leftovers of our runs)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "faultbed.cluster.systems" in cmdline and store in cmdline:
            found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path_factory: pytest.TempPathFactory):
    """Every e2e test leaves no node process of its own behind (nodes' data dirs are under basetemp)."""
    yield
    assert own_cluster_processes(str(tmp_path_factory.getbasetemp())) == []
