"""`faultbed run --backend docker` end to end: raftkv in containers, Toxiproxy in a container, porcupine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from docker.client import DockerClient

from faultbed.cluster.docker import LABEL_RUN
from tests.integration.conftest import run_bounded

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ["--backend", "docker", "--nodes", "5", "--nemesis", "partition,kill,pause", "--quiet"]


def run_faultbed(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_bounded([sys.executable, "-m", "faultbed", "run", *FAULTS, "--store", str(store), *args], 240,
                       cwd=ROOT)


def test_correct_raftkv_in_containers_under_partitions_kills_and_pauses_is_valid(tmp_path):
    proc = run_faultbed(tmp_path, "--time-limit", "20", "--nemesis-interval", "4", "--seed", "21")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (tmp_path / "latest").resolve()
    verdict = json.loads((run_dir / "results.json").read_text())
    assert verdict["valid"] is True and verdict["counts"]["ok"] > 100
    faults = {json.loads(line)["f"] for line in (run_dir / "history.jsonl").read_text().splitlines()
              if '"nemesis"' in line}
    assert {"start-partition", "start-kill", "start-pause"} <= faults, faults
    for node in ("n1", "n5"):
        assert "started" in (run_dir / "nodes" / f"{node}.log").read_text()
    assert (run_dir / "nodes" / "toxiproxy.log").exists()
    assert containers_using(run_dir) == [], "the run left containers behind"


def test_stale_reads_in_containers_are_detected(tmp_path):
    proc = run_faultbed(tmp_path, "--time-limit", "20", "--nemesis-interval", "3", "--bug", "stale-reads",
                        "--seed", "22")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verdict: INVALID" in proc.stdout


def containers_using(run_dir: Path) -> list[str]:
    """Names of faultbed containers that mount something of `run_dir` (a run's nodes do)."""
    client = DockerClient.from_env(timeout=30)
    try:
        containers = client.api.containers(all=True, filters={"label": LABEL_RUN})
    finally:
        client.close()
    return [c["Names"][0] for c in containers
            if any(str(run_dir) in (m.get("Source") or "") for m in c.get("Mounts") or [])]
