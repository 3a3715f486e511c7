"""Helpers for end-to-end tests: `faultbed` as a user runs it, real clusters, no leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHORT_RUN = ["--nodes", "3", "--time-limit", "4", "--rate", "50", "--concurrency", "4", "--nemesis-interval", "1.5",
             "--quiet"]
# A planted stale read, and a fault mix that shows it in every run: each node in turn cut off for 1 s,
# two clients per node on two keys (measured with bench.campaign: 8 of 8 seeds).
STALE_READS = ("--bug", "stale-reads", "--nemesis", "partition-isolate", "--nemesis-interval", "1", "--keys", "2",
               "--concurrency", "6", "--time-limit", "8")


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


def short_run(store: str, *extra: str, expect_exit: int, seed: int = 3) -> str:
    """A short 3-node raftkv run with one seed; its results directory. It must exit `expect_exit`.

    Never retried with another seed: a correct system that comes out INVALID is a failure here,
    and a planted bug is asked for with a fault mix that detects it every time.
    """
    done = faultbed("run", *SHORT_RUN, "--store", store, "--seed", str(seed), *extra)
    assert done.returncode == expect_exit, f"seed {seed}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return run_dir_of(done)


def until_detected(store: str, *extra: str, seeds: tuple[int, ...]) -> list[str]:
    """Run seed after seed until one finds an anomaly (exit 1); one line per run, the finding last.

    Any exit other than 0 (not found) or 1 (found) fails at once: an error is never a detection. A
    planted bug whose window a random fault hits in a share p of the runs is missed by all n seeds
    with chance (1-p)^n: the seeds are as many as keep that negligible, and only a run that misses
    costs the next one.
    """
    lines = []
    for seed in seeds:
        done = faultbed("run", *SHORT_RUN, "--store", os.path.join(store, f"seed-{seed}"), "--seed", str(seed),
                        *extra)
        assert done.returncode in (0, 1), f"seed {seed}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        lines.append(f"seed {seed}: {'INVALID' if done.returncode == 1 else 'valid'} {run_dir_of(done)}")
        if done.returncode == 1:
            break
    print(f"{' '.join(extra)}:\n  " + "\n  ".join(lines))
    return lines


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
