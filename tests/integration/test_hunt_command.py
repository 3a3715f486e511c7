"""`faultbed hunt` end to end on real raftkv: a round is a hunt run (its mix chosen by the
adaptive fault mix) beside a baseline run with the same seed; the report and hunt.json show
each run's verdict and signal, the arms, and detections per minute of test time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import run_faultbed

pytestmark = pytest.mark.integration


def test_one_round_of_hunt_runs_the_chosen_mix_beside_the_baseline(store: Path) -> None:
    proc = run_faultbed("hunt", "--budget", "1", "--run-time", "4", "--arms", "kill-in-flight,pause",
                        "--baseline", "kill", "--seed-base", "21", "--store", str(store), "--",
                        "--workload", "idempotency", "--bug", "local-dedupe", "--nodes", "3",
                        "--nemesis-interval", "1", "--rate", "50", "--concurrency", "4", timeout=300)
    assert proc.returncode in (0, 1, 2), proc.stdout + proc.stderr
    summary = json.loads((store / "hunt.json").read_text())
    [round_] = summary["rounds"]  # the budget is spent after the first round
    assert sorted(round_["entries"]) == ["kill-in-flight", "pause"]  # both arms untried: both chosen
    for side, nemesis in (("hunt", ["kill-in-flight", "pause"]), ("baseline", ["kill"])):
        run = round_[side]
        assert run["seed"] == 21 and run["verdict"] in ("valid", "invalid", "unknown")
        spec = json.loads((Path(run["run_dir"]) / "spec.json").read_text())
        assert sorted(spec["nemesis"]) == nemesis and spec["time_limit"] == 4
        assert run["signal"]["seconds"] == 4 and run["signal"]["score"] >= 0
    hunt_history = (Path(round_["hunt"]["run_dir"]) / "history.jsonl").read_text()
    assert '"start-kill-in-flight"' in hunt_history
    assert {row["entry"]: row["runs"] for row in summary["mix"]} == {"kill-in-flight": 1, "pause": 1}
    assert "round 1 seed 21: hunt [" in proc.stdout
    assert "per minute" in proc.stdout and "baseline (kill):" in proc.stdout


def test_hunt_refuses_flags_it_sets_itself_in_one_line(store: Path) -> None:
    proc = run_faultbed("hunt", "--store", str(store), "--", "--nemesis", "kill")
    assert proc.returncode == 3 and "--nemesis" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (store / "hunt.json").exists()
