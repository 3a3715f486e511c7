"""`pytest -n 2` runs chaos tests' clusters side by side: the suite passes, and the two workers' runs overlap.

The example suite (5 tests, each a real 3-node cluster under faults for 4-5 s)
runs twice, with -n 2 and -n 0; both must pass, and with -n 2 a run of one worker
must be going while a run of the other is (each run's span: its spec.json written
at the start, its results.json at the end). Both wall times are printed and
recorded as test properties (a speed-up is a benchmark's to show, not a test's to
assert on a shared machine).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUITE = "examples/chaos_suite"


def run_suite(workers: str, basetemp: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", workers,
                           "--basetemp", basetemp, SUITE], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=env)
    return time.monotonic() - started, done


def test_suite_of_cluster_tests_passes_with_two_workers_running_clusters_side_by_side(tmp_path, record_property):
    parallel, done_parallel = run_suite("2", str(tmp_path / "n2"))
    assert done_parallel.returncode == 0, done_parallel.stdout[-3000:]
    serial, done_serial = run_suite("0", str(tmp_path / "n0"))
    assert done_serial.returncode == 0, done_serial.stdout[-3000:]
    assert re.search(r"\b5 passed\b", done_parallel.stdout) and re.search(r"\b5 passed\b", done_serial.stdout)
    run_dirs = re.findall(r"valid  \S+  (\S+)", done_parallel.stdout)
    assert len(set(run_dirs)) == 5 and {re.findall(r"popen-(gw\d)", d)[-1] for d in run_dirs} == {"gw0", "gw1"}
    record_property("wall_seconds_n2", round(parallel, 1))
    record_property("wall_seconds_n0", round(serial, 1))
    print(f"\nexample chaos suite wall time: -n 2 {parallel:.1f} s, -n 0 {serial:.1f} s")
    spans: dict[str, list[tuple[float, float]]] = {"gw0": [], "gw1": []}
    for run_dir in run_dirs:
        worker = re.findall(r"popen-(gw\d)", run_dir)[-1]
        directory = Path(ROOT) / run_dir  # as printed: absolute, or from the suite's directory
        spans[worker].append(((directory / "spec.json").stat().st_mtime, (directory / "results.json").stat().st_mtime))
    assert any(a0 < b1 and b0 < a1 for a0, a1 in spans["gw0"] for b0, b1 in spans["gw1"]), spans
