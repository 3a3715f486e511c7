"""RabbitMQ classic mirrored queues, the setup Jepsen tested in 2014 (`--option queue-type=classic-mirrored`):
five nodes, durable classic queues mirrored by the policy ha-mode exactly 3 with automatic sync,
pause_minority, publisher confirms, persistent messages; a random-halves partition longer than the
net tick time, heal, drain. The short version of `make campaign-rabbitmq` (quorum queues, the
control, run in test_rabbitmq.py under partitions too).

Needs the Docker engine and the images of `make images`; without them these tests fail.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import run_bounded

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("rabbitmq-cluster")]  # never beside the other cluster

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 420  # five Erlang VMs on two shared cores take 30 s to several minutes to form a cluster


def test_classic_mirrored_queues_run_as_in_2014_and_every_loss_is_counted(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "faultbed", "run", "--system", "rabbitmq", "--backend", "docker",
               "--nodes", "5", "--workload", "queue", "--nemesis", "partition", "--nemesis-interval", "12",
               "--time-limit", "20", "--option", "queue-type=classic-mirrored", "--seed", "1003",
               "--quiet", "--store", str(tmp_path)]
    proc = run_bounded(command, RUN_TIMEOUT, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # valid, or lost messages: never an error
    run_dir = (tmp_path / "latest").resolve()
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["options"] == {"system": {"queue-type": "classic-mirrored"}}, "replay must repeat the choice"

    logs = {node: (run_dir / "nodes" / f"{node}.log").read_text(errors="replace") for node in
            ("n1", "n2", "n3", "n4", "n5")}
    every_log = "".join(logs.values())
    # the policy made every workload queue a mirrored classic queue, synchronised; member queues stay local
    mirrored = set(re.findall(r"Mirrored queue '(q\d+)' in vhost '/': Adding mirror", every_log))
    assert mirrored == {f"q{i}" for i in range(8)}, mirrored
    assert "Mirrored queue 'faultbed.member." not in every_log
    assert "Synchronising" in every_log
    # the partition outlasted net_ticktime: the minority side paused itself (pause_minority) first; on a
    # loaded machine majority nodes may also see a minority for a moment while the paused ones rejoin
    detected = sorted((line[:32], node) for node, text in logs.items() for line in text.splitlines()
                      if "Cluster minority/secondary status detected" in line)
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    grudge = next(e for e in history if e.get("f") == "start-partition")["grudge"]
    minority = {node for node, cut in grudge.items() if len(cut) > len(grudge) // 2}
    assert detected and detected[0][1] in minority, (detected[:3], minority)

    results = json.loads((run_dir / "results.json").read_text())
    queue = next(r for r in results["results"] if r["checker"] == "queue")["details"]
    assert queue["acknowledged_publishes"] > 50 and len(queue["drained_queues"]) == 8, queue
    assert queue["unexpected_count"] == 0, queue
    # a loss is RabbitMQ's (confirmed, then gone after a drain proved the queue empty), and it is the verdict
    assert (results["valid"] is False) == (proc.returncode == 1)
    assert queue["lost_count"] == 0 or results["valid"] is False, queue
