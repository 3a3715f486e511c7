"""The broker: its replicated queue state on its own, then real 3-node clusters of processes."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any, Iterator

import pytest

from faultbed.cluster.local import LocalBackend
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import Outcome
from faultbed.cluster.systems.broker import SYSTEM
from faultbed.cluster.systems.broker.queues import BrokerState, CommandError
from faultbed.spec import TestSpec
from faultbed.nemesis.grudge import complete_grudge


def command(f: str, now: float, **fields: Any) -> dict[str, Any]:
    return {"f": f, "now": now, "queue": "q", **fields}


# -- the replicated state, applied by hand ------------------------------------

def test_state_hands_out_messages_in_publish_order_and_ack_removes_them() -> None:
    state = BrokerState()
    state.apply(command("publish", 1.0, msg_id="a", body=1))
    state.apply(command("publish", 1.0, msg_id="b", body=2))
    first = state.apply(command("consume", 2.0))
    second = state.apply(command("consume", 2.0))
    assert (first["msg_id"], second["msg_id"]) == ("a", "b")
    assert state.apply(command("consume", 2.0)) is None
    state.apply(command("ack", 2.5, msg_id="a", lease=first["lease"]))
    assert state.apply(command("depth", 2.5)) == {"ready": 0, "leased": 1}


def test_state_redelivers_once_the_logged_clock_passes_the_lease_deadline() -> None:
    state = BrokerState()
    state.apply(command("publish", 1.0, msg_id="a", body=1))
    first = state.apply(command("consume", 2.0, lease_seconds=1.0))
    assert state.apply(command("consume", 2.9)) is None
    again = state.apply(command("consume", 3.0))
    assert again["msg_id"] == "a" and again["deliveries"] == 2 and again["lease"] != first["lease"]
    with pytest.raises(CommandError, match="not leased"):
        state.apply(command("ack", 3.1, msg_id="a", lease=first["lease"]))


def test_state_refuses_an_ack_after_its_lease_expired() -> None:
    state = BrokerState()
    state.apply(command("publish", 1.0, msg_id="a", body=1))
    lease = state.apply(command("consume", 2.0, lease_seconds=1.0))["lease"]
    with pytest.raises(CommandError, match="expired"):
        state.apply(command("ack", 3.5, msg_id="a", lease=lease))


def test_state_clock_never_goes_back_with_an_older_proposer_clock() -> None:
    state = BrokerState()
    state.apply(command("publish", 10.0, msg_id="a", body=1))
    state.apply(command("consume", 10.0, lease_seconds=1.0))
    assert state.apply(command("depth", 12.0)) == {"ready": 1, "leased": 0}
    assert state.apply(command("depth", 5.0)) == {"ready": 1, "leased": 0}


def test_state_dedupes_a_msg_id_even_after_it_was_acked() -> None:
    state = BrokerState()
    first = state.apply(command("publish", 1.0, msg_id="a", body=1))
    assert first["duplicate"] is False
    lease = state.apply(command("consume", 1.0))["lease"]
    state.apply(command("ack", 1.0, msg_id="a", lease=lease))
    assert state.apply(command("publish", 1.0, msg_id="a", body=1)) == {**first, "duplicate": True}
    assert state.apply(command("consume", 1.0)) is None


def test_state_without_dedupe_stores_a_retried_publish_twice() -> None:
    state = BrokerState()
    state.apply(command("publish", 1.0, msg_id="a", body=1, dedupe=False))
    state.apply(command("publish", 1.0, msg_id="a", body=1, dedupe=False))
    assert state.apply(command("depth", 1.0)) == {"ready": 2, "leased": 0}


def test_state_queues_are_independent() -> None:
    state = BrokerState()
    state.apply(command("publish", 1.0, msg_id="a", body=1) | {"queue": "other"})
    assert state.apply(command("consume", 1.0)) is None
    assert state.apply(command("consume", 1.0) | {"queue": "other"})["msg_id"] == "a"


# -- real 3-node clusters --------------------------------------------------------

OP_TIMEOUT = 2.0


@contextlib.contextmanager
def broker_cluster(run_dir: str, bugs: tuple[str, ...] = ()) -> Iterator[RunningCluster]:
    """Three broker processes behind a real Toxiproxy mesh, ready (one leader named by all)."""
    spec = TestSpec(system="broker", nodes=3, workload="queue", bugs=bugs)
    with LocalBackend(SYSTEM, spec, run_dir, f"test-broker-{uuid.uuid4().hex[:8]}") as backend:
        cluster = RunningCluster(SYSTEM, backend, backend.mesh)
        cluster.wait_ready(30)
        yield cluster


def invoke(cluster: RunningCluster, node: str, f: str, queue: str, value: Any = None,
           timeout: float = OP_TIMEOUT) -> Outcome:
    client = cluster.client(node, timeout)
    try:
        return client.invoke(f, queue, value, timeout)
    finally:
        client.close()


def expect_ok(outcome: Outcome) -> Any:
    assert outcome.type == "ok", f"expected ok, got {outcome}"
    return outcome.value


def follower_of(cluster: RunningCluster, leader: str) -> str:
    return next(n for n in cluster.nodes if n != leader)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with broker_cluster(str(tmp_path_factory.mktemp("broker"))) as running:
        yield running


@pytest.mark.integration
def test_status_names_node_leader_state_and_term(cluster: RunningCluster) -> None:
    statuses = cluster.statuses()
    assert set(statuses) == set(cluster.nodes)
    leader = cluster.leader()
    for node, status in statuses.items():
        assert status["node"] == node and status["leader"] == leader and status["term"] >= 1
        assert status["state"] == ("leader" if node == leader else "follower")


@pytest.mark.integration
def test_publish_consume_ack_across_nodes_in_publish_order(cluster: RunningCluster) -> None:
    leader = cluster.wait_ready(10)
    follower = follower_of(cluster, leader)
    for msg_id in ("m1", "m2"):
        published = expect_ok(invoke(cluster, follower, "publish", "orders", {"msg_id": msg_id, "body": msg_id}))
        assert published["duplicate"] is False
    first = expect_ok(invoke(cluster, leader, "consume", "orders"))
    second = expect_ok(invoke(cluster, follower, "consume", "orders"))
    assert (first["msg_id"], first["body"], second["msg_id"]) == ("m1", "m1", "m2")
    assert expect_ok(invoke(cluster, leader, "consume", "orders")) is None
    expect_ok(invoke(cluster, follower, "ack", "orders", {"msg_id": "m1", "lease": first["lease"]}))
    expect_ok(invoke(cluster, leader, "ack", "orders", {"msg_id": "m2", "lease": second["lease"]}))
    assert expect_ok(invoke(cluster, follower, "depth", "orders")) == {"ready": 0, "leased": 0}


@pytest.mark.integration
def test_unacked_message_is_redelivered_after_its_lease_expires(cluster: RunningCluster) -> None:
    node = cluster.nodes[0]
    expect_ok(invoke(cluster, node, "publish", "leases", {"msg_id": "m", "body": 1}))
    first = expect_ok(invoke(cluster, node, "consume", "leases", {"lease_seconds": 0.5}))
    assert expect_ok(invoke(cluster, node, "consume", "leases")) is None  # leased: not ready
    deadline = time.monotonic() + 5
    again = None
    while again is None and time.monotonic() < deadline:
        time.sleep(0.1)
        again = expect_ok(invoke(cluster, node, "consume", "leases"))
    assert again is not None, "message was not redelivered within 5 s of a 0.5 s lease"
    assert again["msg_id"] == "m" and again["deliveries"] == 2
    stale = invoke(cluster, node, "ack", "leases", {"msg_id": "m", "lease": first["lease"]})
    assert stale.type == "fail" and "not leased" in (stale.error or "")
    expect_ok(invoke(cluster, node, "ack", "leases", {"msg_id": "m", "lease": again["lease"]}))
    assert expect_ok(invoke(cluster, node, "depth", "leases")) == {"ready": 0, "leased": 0}


@pytest.mark.integration
def test_retried_publish_is_stored_once(cluster: RunningCluster) -> None:
    first, retry = cluster.nodes[0], cluster.nodes[1]
    expect_ok(invoke(cluster, first, "publish", "dedupe", {"msg_id": "m", "body": 1}))
    assert expect_ok(invoke(cluster, retry, "publish", "dedupe", {"msg_id": "m", "body": 1}))["duplicate"] is True
    assert expect_ok(invoke(cluster, retry, "depth", "dedupe")) == {"ready": 1, "leased": 0}


@pytest.mark.integration
def test_bad_requests_fail_without_effect(cluster: RunningCluster) -> None:
    node = cluster.nodes[0]
    assert invoke(cluster, node, "publish", "bad", {"body": 1}).type == "fail"
    assert invoke(cluster, node, "ack", "bad", {"msg_id": "never-published"}).type == "fail"
    assert invoke(cluster, node, "frobnicate", "bad").type == "fail"
    assert expect_ok(invoke(cluster, node, "depth", "bad")) == {"ready": 0, "leased": 0}


@pytest.mark.integration
def test_no_dedupe_bug_stores_a_retried_publish_twice(tmp_path: Any) -> None:
    with broker_cluster(str(tmp_path), bugs=("no-dedupe",)) as running:
        node = running.nodes[0]
        for _ in range(2):
            expect_ok(invoke(running, node, "publish", "q", {"msg_id": "m", "body": 1}))
        first = expect_ok(invoke(running, node, "consume", "q"))
        second = expect_ok(invoke(running, node, "consume", "q"))
        assert first["msg_id"] == second["msg_id"] == "m"
        expect_ok(invoke(running, node, "ack", "q", {"msg_id": "m", "lease": first["lease"]}))
        expect_ok(invoke(running, node, "ack", "q", {"msg_id": "m", "lease": second["lease"]}))


def publish_on_cut_off_leader(running: RunningCluster) -> tuple[Outcome, str]:
    """Cut the leader off, publish through it, wait for a new leader, heal: (publish outcome, new leader)."""
    old = running.wait_ready(10)
    others = [n for n in running.nodes if n != old]
    running.mesh.partition(complete_grudge([[old], others]))
    outcome = invoke(running, old, "publish", "q", {"msg_id": "m", "body": 1}, timeout=1.0)
    deadline = time.monotonic() + 15
    new = None
    while new in (None, old) and time.monotonic() < deadline:
        time.sleep(0.1)
        new = running.statuses().get(others[0], {}).get("leader")
    assert new not in (None, old), "the majority elected no new leader within 15 s"
    running.mesh.heal()
    assert running.wait_ready(20) == new
    return outcome, new


@pytest.mark.integration
def test_correct_broker_never_acknowledges_a_publish_on_a_cut_off_leader(tmp_path: Any) -> None:
    with broker_cluster(str(tmp_path)) as running:
        outcome, new = publish_on_cut_off_leader(running)
        assert outcome.type in ("info", "fail"), outcome
        assert expect_ok(invoke(running, new, "depth", "q")) == {"ready": 0, "leased": 0}


@pytest.mark.integration
def test_ack_before_replicate_bug_loses_an_acknowledged_publish(tmp_path: Any) -> None:
    with broker_cluster(str(tmp_path), bugs=("ack-before-replicate",)) as running:
        outcome, new = publish_on_cut_off_leader(running)
        assert outcome.type == "ok", outcome
        assert expect_ok(invoke(running, new, "depth", "q")) == {"ready": 0, "leased": 0}
        assert expect_ok(invoke(running, new, "consume", "q")) is None
