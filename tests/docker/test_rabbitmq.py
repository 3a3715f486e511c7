"""RabbitMQ (Debian's rabbitmq-server) with quorum queues: three nodes in containers, Erlang
distribution (epmd and the distribution port) through Toxiproxy, AMQP on the client port.

Needs the Docker engine and the images of `make images`; without them these tests fail.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from faultbed.cluster.docker import DockerBackend
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import FAIL, INFO, OK
from faultbed.cluster.systems.rabbitmq import SYSTEM
from faultbed.cluster.systems.rabbitmq.client import RabbitMQClient
from faultbed.history import pair_operations, read_history
from faultbed.spec import TestSpec
from tests.integration.conftest import run_bounded

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("rabbitmq-cluster")]  # one cluster per module

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
NODES = ("n1", "n2", "n3")
OP_TIMEOUT = 2.0
READY_TIMEOUT = 90.0
RUN_TIMEOUT = 420  # the run itself waits up to the system's ready timeout (180 s) at its start and again
                   # after the heal: a node the partition isolated took 75 s to rejoin on a busy machine
CLI_DIR = "/usr/lib/rabbitmq/bin"


@pytest.fixture(scope="module")
def rabbit3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """Three RabbitMQ nodes in containers, clustered (every node names n1), shared by the module's tests."""
    spec = TestSpec(system="rabbitmq", backend="docker", nodes=3, workload="queue")
    started = time.monotonic()
    with DockerBackend(SYSTEM, spec, str(tmp_path_factory.mktemp("rabbit3")), "test-" + uuid.uuid4().hex[:10]) \
            as backend:
        cluster = RunningCluster(SYSTEM, backend, backend.mesh)
        cluster.wait_ready(READY_TIMEOUT)
        log.info("rabbitmq: 3-node cluster ready %.1fs after start", time.monotonic() - started)
        yield cluster


def rabbitmq_cli(cluster: RunningCluster, node: str, tool: str, *args: str) -> Any:
    """Run a RabbitMQ CLI tool inside `node`'s container against rabbit@node; its JSON output."""
    backend = cluster.backend
    assert isinstance(backend, DockerBackend)
    plan = backend.plan(node)
    code, output = backend.container(node).exec_run(
        [f"{CLI_DIR}/{tool}", "-n", f"rabbit@{node}", *args, "--formatter", "json"],
        environment={"HOME": plan.data_dir, "ERL_EPMD_PORT": str(plan.ports["epmd"])})
    assert code == 0, output.decode(errors="replace")
    return json.loads(output)


def client(cluster: RunningCluster, node: str) -> RabbitMQClient:
    opened = cluster.client(node, timeout=OP_TIMEOUT)
    assert isinstance(opened, RabbitMQClient)
    return opened


def test_three_nodes_form_one_cluster_through_the_mesh(rabbit3):
    statuses = rabbit3.statuses(timeout=OP_TIMEOUT)
    assert {node: status["leader"] for node, status in statuses.items()} == {n: "n1" for n in NODES}, statuses
    status = rabbitmq_cli(rabbit3, "n3", "rabbitmqctl", "cluster_status")
    assert sorted(status["running_nodes"]) == [f"rabbit@{n}" for n in NODES], status
    # peers are dialled by name, and names resolve to Toxiproxy: the mesh carries epmd and distribution
    proxies = {link.name for link in rabbit3.mesh.links}
    assert {"n3-n1-epmd", "n3-n1-dist", "n1-n3-dist"} <= proxies, proxies


def test_a_queue_is_declared_as_a_quorum_queue_with_a_member_on_every_node(rabbit3):
    queue = f"qq-{uuid.uuid4().hex[:6]}"
    with client(rabbit3, "n2") as producer:
        assert producer.invoke("publish", queue, {"msg_id": "m-1", "body": 1}, OP_TIMEOUT).type == OK
    members = rabbitmq_cli(rabbit3, "n1", "rabbitmq-queues", "quorum_status", queue)
    assert sorted(m["Node Name"] for m in members) == [f"rabbit@{n}" for n in NODES], members
    assert [m["Raft State"] for m in members].count("leader") == 1, members


def test_published_messages_are_consumed_acked_and_redelivered_when_their_channel_closes(rabbit3):
    queue = f"roundtrip-{uuid.uuid4().hex[:6]}"
    with client(rabbit3, "n1") as producer, client(rabbit3, "n3") as observer:
        for msg_id, body in (("p-1", 11), ("p-2", 22)):
            outcome = producer.invoke("publish", queue, {"msg_id": msg_id, "body": body}, OP_TIMEOUT)
            assert (outcome.type, outcome.node) == (OK, "n1"), outcome
        assert observer.invoke("depth", queue, None, OP_TIMEOUT).value == {"ready": 2, "leased": 0}

        consumer = client(rabbit3, "n2")
        first = consumer.invoke("consume", queue, None, OP_TIMEOUT)
        assert first.type == OK and first.value["msg_id"] == "p-1" and first.value["body"] == 11, first
        assert first.value["deliveries"] == 1
        assert observer.invoke("depth", queue, None, OP_TIMEOUT).value == {"ready": 1, "leased": 1}
        consumer.close()  # unacked: RabbitMQ puts it back

        again = observer.invoke("consume", queue, None, OP_TIMEOUT)
        assert again.value["msg_id"] == "p-1" and again.value["deliveries"] == 2, again
        channel = again.value["lease"].split(":")[0]
        stale = observer.invoke("ack", queue, {"msg_id": "p-1", "lease": f"{channel}:999"}, OP_TIMEOUT)
        assert stale.type == FAIL, f"an ack of a delivery tag the channel never had must fail: {stale}"
        # the refused ack closed the channel: the lease went with it and the message is back
        lost = observer.invoke("ack", queue, {"msg_id": "p-1", "lease": again.value["lease"]}, OP_TIMEOUT)
        assert lost.type == FAIL and "lease lost" in (lost.error or ""), lost
        for expected in ("p-1", "p-2"):
            delivery = observer.invoke("consume", queue, None, OP_TIMEOUT)
            assert delivery.value["msg_id"] == expected, delivery
            assert observer.invoke("ack", queue, delivery.value, OP_TIMEOUT).type == OK
        assert observer.invoke("consume", queue, None, OP_TIMEOUT).value is None
        assert observer.invoke("depth", queue, None, OP_TIMEOUT).value == {"ready": 0, "leased": 0}


def test_a_publish_to_a_frozen_node_is_unknown_not_failed(rabbit3):
    queue = f"frozen-{uuid.uuid4().hex[:6]}"
    with client(rabbit3, "n3") as producer:
        assert producer.invoke("publish", queue, {"msg_id": "f-0", "body": 0}, OP_TIMEOUT).type == OK
        rabbit3.backend.pause("n3")
        try:
            outcome = producer.invoke("publish", queue, {"msg_id": "f-1", "body": 1}, 1.0)
        finally:
            rabbit3.backend.resume("n3")
    assert outcome.type == INFO, outcome
    rabbit3.wait_ready(READY_TIMEOUT)


def test_faultbed_run_on_rabbitmq_under_partitions_loses_no_confirmed_message(tmp_path):
    """RabbitMQ's quorum queues must keep every confirmed publish. They do not deduplicate: a publish
    retried after an unknown outcome may be enqueued twice, which the queue checker reports as
    duplicated (and may then see as reordered); such anomalies must involve retried publishes only."""
    command = [sys.executable, "-m", "faultbed", "run", "--system", "rabbitmq", "--backend", "docker",
               "--nodes", "3", "--workload", "queue", "--nemesis", "partition", "--time-limit", "15",
               "--seed", "41", "--quiet", "--store", str(tmp_path)]
    proc = run_bounded(command, RUN_TIMEOUT, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    run_dir = (tmp_path / "latest").resolve()
    verdict = json.loads((run_dir / "results.json").read_text())
    queue = next(r for r in verdict["results"] if r["checker"] == "queue")["details"]
    assert queue["lost_count"] == 0 and queue["unexpected_count"] == 0, queue
    assert queue["unconsumed_count"] == 0 and len(queue["drained_queues"]) == 8, queue
    assert queue["acknowledged_publishes"] > 50, queue
    retried = retried_messages(run_dir / "history.jsonl")
    redelivered = redelivered_messages(run_dir / "history.jsonl")
    for item in queue["duplicated"]:  # at-least-once: a retried publish, or an ack RabbitMQ never got
        assert item["msg_id"] in retried | redelivered, f"{item} duplicated without a retried publish or a redelivery"
    for item in queue["reordered"]:
        assert {item["earlier"], item["later"]} & retried, f"{item} reordered without a retried publish"
    assert (proc.returncode == 0) == (verdict["valid"] is True)


def redelivered_messages(history: Path) -> set[str]:
    """Message ids RabbitMQ delivered again flagged `redelivered` (an earlier delivery's ack never reached it)."""
    return {str(op.completion["value"]["msg_id"]) for op in pair_operations(read_history(str(history)))
            if op.f == "consume" and op.type == "ok" and isinstance(op.completion.get("value"), dict)
            and op.completion["value"].get("redelivered")}


def retried_messages(history: Path) -> set[str]:
    """Message ids published more than once (retries after a timeout or an error)."""
    attempts: dict[str, int] = {}
    for op in pair_operations(read_history(str(history))):
        if op.f == "publish":
            msg_id = str(op.invoke.get("msg_id"))
            attempts[msg_id] = attempts.get(msg_id, 0) + 1
    return {msg_id for msg_id, count in attempts.items() if count > 1}
