"""The example chaos suite is a gate: with a bug planted in the system it fails, saying how to replay."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.integration


def test_example_suite_fails_when_a_bug_is_planted_and_prints_the_replay_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    # two tests: the one that hammers one key from every node catches stale reads every time
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                           "--basetemp", str(tmp_path / "base"), "--faultbed-store", str(tmp_path / "store"),
                           "--faultbed-bug", "stale-reads", "examples/chaos_suite",
                           "-k", "under_partitions or piece_by_piece"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "FAILED examples/chaos_suite/test_raftkv_chaos.py::test_reads_and_writes_on_every_node" in done.stdout
    assert "verdict INVALID (expected valid)" in done.stdout
    assert f"replay:  faultbed replay {tmp_path / 'store'}/raftkv-register/" in done.stdout


def test_piece_by_piece_fixtures_run_a_cluster_under_faults_and_leave_a_checked_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    store_dir = tmp_path / "store"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "0",
                           "--basetemp", str(tmp_path / "base"), "--faultbed-store", str(store_dir),
                           "examples/chaos_suite", "-k", "piece_by_piece"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-3000:]
    (run_dir,) = list((store_dir / "raftkv-register").iterdir())
    assert {"spec.json", "schedule.json", "history.jsonl", "results.json", "report.html"} <= set(
        os.listdir(run_dir))
    page = (run_dir / "report.html").read_text()
    assert 'data-valid="valid"' in page and '></span>partition-isolate</td>' in page
