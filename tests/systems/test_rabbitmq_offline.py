"""RabbitMQ without a broker: the queue-type option (config, definitions, client arguments) and
the client's behaviour against a peer that never completes the AMQP handshake.

The broker itself is tested in tests/docker/test_rabbitmq.py and test_rabbitmq_mirrored.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from typing import Iterator

import pytest

from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import SYSTEM_OPTIONS, chosen_options, check_options
from faultbed.cluster.systems.rabbitmq import SYSTEM
from faultbed.cluster.systems.rabbitmq.client import QUEUE_ARGUMENTS, RabbitMQClient
from faultbed.cluster.systems.rabbitmq.node import config_text, definitions, password_hash, prepare
from faultbed.errors import FaultbedError


def plan(tmp_path, queue_type: str | None) -> dict:
    options = {SYSTEM_OPTIONS: {"queue-type": queue_type}} if queue_type else {}
    return {"name": "n2", "nodes": ["n1", "n2", "n3", "n4", "n5"], "data_dir": str(tmp_path / "data" / "n2"),
            "ports": {"epmd": 4369, "dist": 25672, "amqp": 5672}, "options": options}


def test_classic_mirrored_nodes_load_the_2014_policy_and_pause_the_minority(tmp_path) -> None:
    mirrored = plan(tmp_path, "classic-mirrored")
    prepare(mirrored)
    text = config_text(mirrored)
    assert "cluster_partition_handling = pause_minority" in text
    assert f"load_definitions = {tmp_path}/data/n2/definitions.json" in text
    loaded = json.loads((tmp_path / "data" / "n2" / "definitions.json").read_text())
    [policy] = loaded["policies"]
    assert policy["definition"] == {"ha-mode": "exactly", "ha-params": 3, "ha-sync-mode": "automatic"}
    assert policy["apply-to"] == "queues" and policy["pattern"] == r"^(?!faultbed\.member\.)"
    # a node that loads definitions creates no default user or vhost: the file brings them
    assert [u["name"] for u in loaded["users"]] == ["guest"] and loaded["vhosts"] == [{"name": "/"}]
    for quorum in (plan(tmp_path, "quorum"), plan(tmp_path, None)):
        text = config_text(quorum)
        assert "cluster_partition_handling = autoheal" in text and "load_definitions" not in text


def test_the_guest_password_hash_is_rabbitmqs_salted_sha256(tmp_path) -> None:
    [user] = definitions(plan(tmp_path, "classic-mirrored"))["users"]
    raw = base64.b64decode(user["password_hash"])
    salt, digest = raw[:4], raw[4:]
    assert digest == hashlib.sha256(salt + b"guest").digest() and len(raw) == 36
    assert password_hash("guest", salt) == user["password_hash"]


def test_the_option_is_declared_validated_and_reaches_the_client_with_defaults() -> None:
    assert chosen_options(SYSTEM, {}) == {"queue-type": "quorum"}
    assert chosen_options(SYSTEM, {SYSTEM_OPTIONS: {"queue-type": "classic-mirrored"}}) == \
        {"queue-type": "classic-mirrored"}
    check_options(SYSTEM, "rabbitmq", {SYSTEM_OPTIONS: {"queue-type": "classic-mirrored"}, "check_timeout": 5})
    with pytest.raises(FaultbedError, match="option queue-type of system rabbitmq must be one of quorum, "
                                            "classic-mirrored, not 'mirrored'"):
        check_options(SYSTEM, "rabbitmq", {SYSTEM_OPTIONS: {"queue-type": "mirrored"}})
    with pytest.raises(FaultbedError, match="system rabbitmq has no option 'ha-mode' "
                                            r"\(its options: queue-type=quorum\|classic-mirrored\)"):
        check_options(SYSTEM, "rabbitmq", {SYSTEM_OPTIONS: {"ha-mode": "all"}})
    assert QUEUE_ARGUMENTS["classic-mirrored"] == {"x-queue-type": "classic"}


class SilentPeer:
    """A TCP server that accepts and reads but never answers: an AMQP handshake that never ends."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.server.accept()
                self.accepted.append(conn)
        except OSError:
            return

    def close(self) -> None:
        self.server.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_peer() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    yield peer
    peer.close()


def test_a_connect_timeout_in_the_handshake_is_an_oserror_not_a_pika_assertion(silent_peer) -> None:
    """pika 1.2 fails an assertion when an opening connection is closed; the client drops it instead,
    so a broker too slow to answer is a node that is down (OSError), not a crash of faultbed."""
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(OSError):
            RabbitMQClient(silent_peer.address, "n1", 0.3, "classic-mirrored")
        assert time.monotonic() - started < 3.0
    assert len(silent_peer.accepted) == 3  # the handshake had begun: TCP was accepted every time


def test_a_running_cluster_gives_the_declared_options_to_the_client_only(silent_peer) -> None:
    class Backend:
        def node_names(self) -> list[str]:
            return ["n1"]

        def client_address(self, node: str) -> tuple[str, int]:
            return silent_peer.address

    cluster = RunningCluster(SYSTEM, Backend(), None, options={SYSTEM_OPTIONS: {"queue-type": "classic-mirrored"},
                                                               "check_timeout": 9})  # type: ignore[arg-type]
    assert cluster.system_options == {"queue-type": "classic-mirrored"}


def test_operations_after_a_handshake_timeout_drop_the_opening_connection_and_fail_not_crash(silent_peer) -> None:
    """An operation whose connection never opened is `fail` (nothing was sent); the next one drops
    that still-opening connection, whose teardown completes in the I/O loop the new one shares:
    pika 1.2 asserted there (`expected self._error to be populated`) and the worker died."""

    class ConnectedLater(RabbitMQClient):
        def _open(self, deadline: float) -> None:
            if getattr(self, "constructed", False):
                super()._open(deadline)
            self.constructed = True  # the constructor's connect is skipped: invoke connects

    client = ConnectedLater(silent_peer.address, "n1", 0.3, "classic-mirrored")
    try:
        for i in range(3):
            outcome = client.invoke("publish", "q0", {"msg_id": f"m-{i}", "body": i}, 0.3)
            assert outcome.type == "fail" and outcome.error == "not sent: timeout", outcome
    finally:
        client.close()
    assert len(silent_peer.accepted) == 3
