"""The local backend's process faults really happen: real raftkv processes behind the Toxiproxy mesh."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from faultbed.cluster.backend import DEAD, PAUSED, RUNNING
from faultbed.cluster.local import LocalBackend
from faultbed.cluster.registry import process_state
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import load_system
from faultbed.spec import TestSpec
from tests.integration.conftest import processes_of_run, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path) -> Iterator[RunningCluster]:
    system = load_system("raftkv")
    run_id = uuid.uuid4().hex[:12]
    with LocalBackend(system, TestSpec(nodes=3), str(tmp_path), run_id) as backend:
        running = RunningCluster(system, backend, backend.mesh)
        running.wait_ready(30, nodes=running.nodes)
        yield running
    assert processes_of_run(run_id) == [], "teardown stops every node and the Toxiproxy server"


def _write_until_ok(cluster: RunningCluster, node: str, key: str, value: int) -> None:
    def attempt() -> bool:
        client = cluster.client(node)
        try:
            return client.invoke("write", key, value, 2.0).type == "ok"
        finally:
            client.close()
    wait_for(attempt, 20, f"write {key}={value} through {node}")


def test_killed_node_is_gone_and_after_restart_has_its_data(cluster):
    backend = cluster.backend
    node = cluster.nodes[0]
    _write_until_ok(cluster, node, "kept", 42)
    pid = backend.pid(node)
    backend.kill(node)
    assert backend.state(node) == DEAD
    assert process_state(pid) in (None, "Z")
    backend.restart(node)
    assert backend.state(node) == RUNNING and backend.pid(node) != pid
    cluster.wait_ready(30, nodes=cluster.nodes)

    def reads_kept() -> bool:
        client = cluster.client(node)
        try:
            outcome = client.invoke("read", "kept", None, 2.0)
            return outcome.type == "ok" and outcome.value == 42
        finally:
            client.close()
    wait_for(reads_kept, 20, "the restarted node to read back the write made before its kill")
    with open(backend.log_path(node), encoding="utf-8", errors="replace") as fh:
        assert fh.read().count("started:") == 2, "the log keeps both lives of the node"


def test_paused_node_is_stopped_and_silent_until_resumed(cluster):
    backend = cluster.backend
    node = cluster.nodes[1]
    backend.pause(node)
    assert backend.state(node) == PAUSED
    pid = backend.pid(node)
    states = [Path(f"/proc/{pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()[0]
              for task in os.listdir(f"/proc/{pid}/task")]
    assert len(states) > 1, "a raftkv node runs several threads"
    assert set(states) <= {"T", "t"}, f"pause returned before every thread stopped: {states}"
    client = cluster.client(node)  # the kernel still accepts the connection; nobody answers
    try:
        outcome = client.invoke("read", "k", None, 0.5)
        assert outcome.type in ("info", "fail") and outcome.error, outcome
    finally:
        client.close()
    backend.resume(node)
    assert backend.state(node) == RUNNING
    cluster.wait_ready(30, nodes=cluster.nodes)
