"""Power loss on the docker backend: faultbed-diskfs mounted on this machine, bind-mounted into etcd's containers.

Needs the Docker engine, FUSE and the images of `make images`; without them this test fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultbed.cluster.disk import is_mounted
from tests.integration.conftest import run_faultbed

pytestmark = pytest.mark.docker


def test_etcd_recovers_from_coordinated_power_loss_and_is_valid(tmp_path: Path):
    store = tmp_path / "store"
    proc = run_faultbed("run", "--system", "etcd", "--backend", "docker", "--nodes", "3", "--time-limit", "10",
                        "--nemesis", "power-loss:all", "--nemesis-interval", "3", "--rate", "40",
                        "--concurrency", "4", "--seed", "4", "--quiet", "--store", str(store), timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert any(e["process"] == "nemesis" and e["f"] == "start-power-loss" for e in events)
    heal = [e for e in events if e["process"] == "nemesis" and e["f"] == "heal"][-1]
    assert heal["ready"] is True, "etcd came back after losing power"
    assert any(e["type"] == "ok" and e["f"] == "read" and e["process"] >= 1_000_000 for e in events)
    assert list((run_dir / "data" / "n1" / "etcd" / "member" / "wal").glob("*.wal")), "the WAL is on the disk"
    assert not any(is_mounted(str(run_dir / "mnt" / n)) for n in ("n1", "n2", "n3"))
