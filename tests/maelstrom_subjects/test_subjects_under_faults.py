"""The test subjects through `faultbed run --bin` as a user would run them: real routers, real Toxiproxy,
real kills and pauses; the correct nodes are valid, each planted bug is caught. (The 10-run campaigns
behind the issue's numbers are `python -m bench.maelstrom_campaigns`.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import results, run_faultbed
from tests.maelstrom_subjects.stdio import NODES_DIR

pytestmark = pytest.mark.integration

SHORT = ["--nodes", "3", "--rate", "60", "--concurrency", "4", "--nemesis-interval", "2", "--quiet"]


def run_subject(store: Path, program: str | Path, workload: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    """One run; its exit code, results.json and printed output."""
    proc = run_faultbed("run", "--bin", str(program), "--workload", workload, *SHORT, *extra, "--store", str(store))
    run_dir = (store / "latest").resolve()
    assert (run_dir / "results.json").exists(), proc.stdout + proc.stderr
    return proc.returncode, results(run_dir), proc.stdout + proc.stderr


def verdict_of(outcome: dict[str, Any], checker: str) -> dict[str, Any]:
    [found] = [r for r in outcome["results"] if r["checker"] == checker]
    return dict(found)


def test_go_node_never_written_for_faultbed_is_valid_through_bin_under_partitions(go_node: Path,
                                                                                   tmp_path: Path) -> None:
    code, outcome, out = run_subject(tmp_path / "broadcast", go_node, "broadcast", "--nemesis", "partition",
                                     "--time-limit", "6", "--seed", "11")
    assert code == 0, out
    broadcast = verdict_of(outcome, "broadcast")
    assert broadcast["details"]["acknowledged"] > 50 and len(broadcast["details"]["final_reads"]) == 3, broadcast
    for workload in ("unique-ids", "echo"):
        code, outcome, out = run_subject(tmp_path / workload, go_node, workload, "--nemesis", "none",
                                         "--time-limit", "3", "--seed", "12")
        assert code == 0, out
        assert verdict_of(outcome, workload)["details"]["acknowledged"] > 50


def test_raft_kv_is_linearizable_under_partitions_kills_and_pauses(tmp_path: Path) -> None:
    code, outcome, out = run_subject(tmp_path, NODES_DIR / "raft_kv.py", "lin-kv", "--nemesis",
                                     "partition,kill,pause", "--time-limit", "8", "--seed", "21")
    assert code == 0, out
    assert outcome["counts"]["ok"] > 20, outcome["counts"]  # kills and pauses of 3 nodes leave little time


def test_raft_kv_stale_follower_reads_are_not_linearizable(tmp_path: Path) -> None:
    code, outcome, out = run_subject(tmp_path, NODES_DIR / "raft_kv.py", "lin-kv", "--bin-arg=--stale-reads",
                                     "--nemesis", "partition", "--time-limit", "8", "--seed", "22")
    assert code == 1, out
    assert verdict_of(outcome, "linearizable")["valid"] is False


def test_broadcast_without_retransmission_loses_values_across_partitions(tmp_path: Path) -> None:
    code, outcome, out = run_subject(tmp_path, NODES_DIR / "broadcast.py", "broadcast", "--bin-arg=--no-retransmit",
                                     "--nemesis", "partition", "--time-limit", "6", "--seed", "31")
    assert code == 1, out
    details = verdict_of(outcome, "broadcast")["details"]
    assert details["unconverged_count"] + details["lost_count"] > 0, details


def test_counter_is_valid_under_kills_and_partitions_and_double_counted_retries_are_caught(tmp_path: Path) -> None:
    program = NODES_DIR / "counter.py"
    code, outcome, out = run_subject(tmp_path / "correct", program, "pn-counter", "--nemesis", "partition,kill",
                                     "--time-limit", "6", "--seed", "41")
    assert code == 0, out
    code, outcome, out = run_subject(tmp_path / "bug", program, "g-counter", "--bin-arg=--double-count-retries",
                                     "--nemesis", "partition", "--time-limit", "6", "--seed", "41")
    assert code == 1, out
    counter = verdict_of(outcome, "counter")
    assert counter["details"]["out_of_bounds_count"] + counter["details"]["impossible_reads_count"] > 0, counter
    assert json.dumps(counter)
