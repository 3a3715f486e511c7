"""A correct system through a system file on the local backend: raftkv described by
examples/systems/raftkv.toml, copied outside the repository, valid under partitions and kills,
its nodes' Raft traces (the file's `raft_trace`) checked by raft-invariants, and replayable
from anywhere (also once the file is gone: the run keeps a copy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, run_faultbed

pytestmark = pytest.mark.integration

RAFTKV_FILE = ROOT / "examples" / "systems" / "raftkv.toml"


def test_raftkv_by_file_is_valid_under_partitions_and_kills_and_replays_from_anywhere(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(RAFTKV_FILE, mine / "raftkv.toml")
    store = tmp_path / "store"
    proc = run_faultbed("run", "--system", "./mine/raftkv.toml", "--nodes", "3", "--nemesis", "partition,kill",
                        "--nemesis-interval", "3", "--time-limit", "12", "--rate", "60", "--concurrency", "4",
                        "--seed", "11", "--quiet", "--store", str(store), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["valid"] is True and results["counts"]["ok"] > 100, results["counts"]
    raft = next(r for r in results["results"] if r["checker"] == "raft-invariants")  # the file's raft_trace
    assert raft["valid"] is True and set(raft["details"]["nodes"]) == {"n1", "n2", "n3"}, raft
    assert min(raft["details"]["nodes"].values()) > 10, raft["details"]["nodes"]
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["system"] == str(mine / "raftkv.toml"), "the spec names the file by its absolute path"
    assert (run_dir / "system.toml").read_text() == RAFTKV_FILE.read_text(), "the run keeps a copy of the file"
    faults = {json.loads(line)["f"] for line in (run_dir / "history.jsonl").read_text().splitlines()
              if '"nemesis"' in line}
    assert {"start-partition", "start-kill"} <= faults, faults

    (mine / "raftkv.toml").unlink()
    replay = run_faultbed("replay", str(run_dir), "--quiet", cwd=Path("/"))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "using the run's copy" in replay.stderr and "verdict reproduced" in replay.stdout, replay.stdout
