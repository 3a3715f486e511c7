"""`faultbed shrink` on a real failing raftkv run (stale-reads under partitions), with a tight budget."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from faultbed.commands.shrink import first_anomaly
from tests.integration.conftest import run_faultbed

pytestmark = pytest.mark.integration

FAILING = ["--nodes", "5", "--time-limit", "12", "--nemesis-interval", "2", "--rate", "100",
           "--bug", "stale-reads", "--seed", "3", "--quiet"]


def starts(run_dir: Path) -> list[dict]:
    schedule = json.loads((run_dir / "schedule.json").read_text())
    return [e for e in schedule["events"] if e["action"] == "start"]


def test_shrink_finds_a_smaller_failing_schedule_and_prints_its_replay(store: Path) -> None:
    proc = run_faultbed("run", *FAILING, "--store", str(store))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    original = (store / "latest").resolve()
    before = starts(original)
    assert len(before) >= 3

    proc = run_faultbed("shrink", str(original), "--tries", "1", "--needed", "1", "--budget", "60",
                        timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    minimal = Path(next(line for line in lines if line.startswith("results: ")).split(" ", 1)[1])
    assert f"replay: faultbed replay {minimal}" in lines
    spec = json.loads((minimal / "spec.json").read_text())
    after = starts(minimal)
    assert len(after) <= 2 and len(after) < len(before)
    assert spec["seed"] == 3 and spec["time_limit"] <= 12
    summary = json.loads((minimal.parents[1] / "shrink.json").read_text())
    assert summary["run_dir"] == str(minimal) and summary["attempts"][0]["runs"]
    # the first candidate is the run cut 2 s after its first anomaly (which falls where the run's timing
    # puts it: 7.5 s here on a quiet machine, later under load); the answer is never longer once it failed
    anomaly = first_anomaly(json.loads((original / "results.json").read_text()))
    assert anomaly is not None, "the original run's first anomaly has a time: shrink starts from it"
    first = summary["attempts"][0]
    cut = json.loads((Path(first["runs"][0]["run_dir"]) / "spec.json").read_text())["time_limit"]
    assert cut == min(12, math.ceil(anomaly + 2 - 1e-9)), (cut, anomaly)
    if first["fails"]:
        assert spec["time_limit"] <= cut
    assert json.loads((minimal / "results.json").read_text())["valid"] is False
    kept = {e["id"] for e in after}
    history = [json.loads(line) for line in (minimal / "history.jsonl").read_text().splitlines()]
    started = {e["id"] for e in history if e["process"] == "nemesis" and str(e["f"]).startswith("start-")}
    assert started == kept, "the minimal run's history (and report) has only the faults that mattered"


def test_shrink_refuses_a_run_that_did_not_fail(tmp_path: Path) -> None:
    run_dir = tmp_path / "raftkv-register" / "x"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps({"seed": 1}))
    (run_dir / "schedule.json").write_text(json.dumps({
        "version": 1, "seed": 1, "nodes": ["n1", "n2", "n3", "n4", "n5"], "partition_mode": "blackhole",
        "interval": 10.0, "time_limit": 30.0, "faults": [], "events": []}))
    (run_dir / "results.json").write_text(json.dumps({"valid": True, "counts": {}, "results": []}))
    proc = run_faultbed("shrink", str(run_dir))
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and "not invalid" in proc.stderr
