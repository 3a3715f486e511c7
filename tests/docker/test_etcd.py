"""etcd (Debian's etcd-server) as a system under test: three members in containers, every peer byte through Toxiproxy.

Needs the Docker engine and the images of `make images`; without them these tests fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from faultbed.cluster.docker import DockerBackend
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import FAIL, INFO, OK, Outcome
from faultbed.cluster.systems.etcd import SERIALIZABLE_READS, SYSTEM
from faultbed.spec import TestSpec
from faultbed.nemesis.grudge import complete_grudge
from tests.integration.conftest import run_bounded

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("etcd-cluster")]  # one cluster per module

ROOT = Path(__file__).resolve().parents[2]
ETCD_FILE = ROOT / "examples" / "systems" / "etcd.toml"
NOT_PROPOSED = SYSTEM.spec.client.certain_failures  # errors etcd raises before a write enters the log
OP_TIMEOUT = 2.0
RUN_TIMEOUT = 150


@pytest.fixture(scope="module")
def etcd3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """Three etcd members in containers, ready (all name one leader); shared by the module's tests."""
    spec = TestSpec(system="etcd", backend="docker", nodes=3)
    with DockerBackend(SYSTEM, spec, str(tmp_path_factory.mktemp("etcd3")), "test-" + uuid.uuid4().hex[:10]) as backend:
        cluster = RunningCluster(SYSTEM, backend, backend.mesh)
        cluster.wait_ready(30)
        yield cluster


def until_ok(attempt: Callable[[], Outcome], seconds: float = 15.0) -> Outcome:
    """Repeat `attempt` until it is ok (elections take a moment after a partition); the last outcome."""
    deadline = time.monotonic() + seconds
    outcome = attempt()
    while outcome.type != OK and time.monotonic() < deadline:
        time.sleep(0.2)
        outcome = attempt()
    return outcome


def invoke(cluster: RunningCluster, node: str, f: str, key: str, value: Any = None) -> Outcome:
    client = cluster.client(node)
    try:
        return client.invoke(f, key, value, OP_TIMEOUT)
    finally:
        client.close()


def test_writes_are_read_back_on_every_member_and_cas_compares_the_current_value(etcd3):
    key = f"semantics-{uuid.uuid4().hex[:6]}"
    assert invoke(etcd3, "n1", "read", key) == Outcome(OK, None, node="n1"), "a missing key reads as None"
    assert invoke(etcd3, "n1", "cas", key, [0, 1]) == Outcome(FAIL, error="cas-mismatch", node="n1"), \
        "cas on a missing key must fail"
    assert invoke(etcd3, "n1", "write", key, 3).type == OK
    for node in ("n1", "n2", "n3"):
        assert invoke(etcd3, node, "read", key).value == 3, f"{node} does not read the acknowledged write"
    assert invoke(etcd3, "n2", "cas", key, [3, 4]) == Outcome(OK, [3, 4], node="n2")
    assert invoke(etcd3, "n3", "cas", key, [3, 0]) == Outcome(FAIL, error="cas-mismatch", node="n3")
    assert invoke(etcd3, "n3", "read", key).value == 4


def test_every_member_names_the_same_leader_by_node_name(etcd3):
    statuses = etcd3.statuses(timeout=2.0)
    assert set(statuses) == {"n1", "n2", "n3"}
    leaders = {status["leader"] for status in statuses.values()}
    assert len(leaders) == 1 and leaders <= {"n1", "n2", "n3"}, statuses


def test_serializable_reads_on_an_isolated_member_return_the_old_value(etcd3):
    """The planted bug, shown deterministically: a partitioned member answers serializable reads from
    its own stale state, while a linearizable read there cannot complete."""
    key = f"stale-{uuid.uuid4().hex[:6]}"
    leader = etcd3.leader(timeout=2.0)
    isolated = next(n for n in ("n1", "n2", "n3") if n != leader)
    majority = [n for n in ("n1", "n2", "n3") if n != isolated]
    buggy = SYSTEM.open_client(etcd3.backend.client_address(isolated), isolated, OP_TIMEOUT,
                               (SERIALIZABLE_READS,))
    try:
        assert invoke(etcd3, majority[0], "write", key, 1).type == OK
        assert until_ok(lambda: _expect(buggy.invoke("read", key, None, OP_TIMEOUT), 1)).value == 1, \
            f"{isolated} never caught up with the first write"
        etcd3.mesh.partition(complete_grudge([[isolated], majority]))
        try:
            written = until_ok(lambda: invoke(etcd3, majority[0], "write", key, 2))
            assert written.type == OK, f"the majority could not write: {written}"
            stale = buggy.invoke("read", key, None, OP_TIMEOUT)
            assert stale == Outcome(OK, 1, node=isolated), f"expected the old value 1 from {isolated}, got {stale}"
            linearizable = invoke(etcd3, isolated, "read", key)
            assert linearizable.type == FAIL, f"a linearizable read on the isolated member answered {linearizable}"
        finally:
            etcd3.mesh.heal()
        assert until_ok(lambda: _expect(buggy.invoke("read", key, None, OP_TIMEOUT), 2)).value == 2
    finally:
        buggy.close()
    etcd3.wait_ready(30)


def test_a_write_without_a_quorum_is_never_ok_and_fails_only_when_never_proposed(etcd3):
    """A timed-out write is `info`: etcd may still commit a proposal the client stopped waiting for."""
    key = f"unknown-{uuid.uuid4().hex[:6]}"
    etcd3.mesh.partition(complete_grudge([["n1"], ["n2"], ["n3"]]))
    try:
        outcome = invoke(etcd3, "n1", "write", key, 1)
    finally:
        etcd3.mesh.heal()
    assert outcome.type == INFO or (outcome.type == FAIL and outcome.error in NOT_PROPOSED), outcome
    etcd3.wait_ready(30)


def run_faultbed(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`faultbed run` on a copy of the etcd system file in a directory outside the repository."""
    copy = store / "mine" / "etcd.toml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(ETCD_FILE.read_text())
    command = [sys.executable, "-m", "faultbed", "run", "--system", "./mine/etcd.toml", "--backend", "docker",
               "--nodes", "3", "--quiet", "--store", str(store), *args]
    return run_bounded(command, RUN_TIMEOUT, cwd=store)


def test_faultbed_run_on_etcd_under_partitions_and_kills_is_valid(tmp_path):
    proc = run_faultbed(tmp_path, "--nemesis", "partition,kill", "--nemesis-interval", "4", "--time-limit", "15",
                        "--seed", "31")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (tmp_path / "latest").resolve()
    verdict = json.loads((run_dir / "results.json").read_text())
    assert verdict["valid"] is True and verdict["counts"]["ok"] > 100, verdict["counts"]
    faults = {json.loads(line)["f"] for line in (run_dir / "history.jsonl").read_text().splitlines()
              if '"nemesis"' in line}
    assert {"start-partition", "start-kill"} <= faults, faults


def test_faultbed_run_with_serializable_reads_under_partitions_is_invalid(tmp_path):
    proc = run_faultbed(tmp_path, "--nemesis", "partition", "--nemesis-interval", "4", "--time-limit", "15",
                        "--bug", SERIALIZABLE_READS, "--seed", "32")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verdict: INVALID" in proc.stdout


def test_etcd_on_the_local_backend_is_refused_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "faultbed", "run", "--system", "etcd", "--backend", "local",
                           "--nodes", "3", "--time-limit", "5", "--quiet", "--store", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "docker" in line]
    assert errors and "Traceback" not in proc.stderr, proc.stderr


def _expect(outcome: Outcome, value: Any) -> Outcome:
    """`outcome` when it carries `value`, else a failure (so until_ok keeps trying)."""
    return outcome if outcome.type == OK and outcome.value == value else Outcome(FAIL, error=f"read {outcome}")
