"""The real toxiproxy-server (v2.12.0 from scripts/setup): lifecycle and the typed client."""

from __future__ import annotations

import os
import signal
import socket
from typing import Iterator

import pytest

from faultbed.cluster.ports import PortReservation
from faultbed.cluster.toxiproxy import ProxyConfig, ToxiproxyClient, ToxiproxyError, ToxiproxyServer
from faultbed.errors import SetupError

HOST = "127.0.0.1"



@pytest.fixture
def ports() -> Iterator[PortReservation]:
    with PortReservation(HOST) as reservation:
        yield reservation


@pytest.fixture
def client(server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    yield server.client
    for name in server.client.proxies():
        server.client.delete_proxy(name)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_server_starts_answers_version_carries_env_and_stops_leaving_nothing(
        ports: PortReservation, tmp_path: os.PathLike[str]) -> None:
    log_path = os.path.join(tmp_path, "logs", "toxiproxy.log")
    with ToxiproxyServer(HOST, ports.take()[0], log_path, env={"FAULTBED_RUN": "test-run-1"}) as server:
        pid = server.pid
        assert pid is not None and process_exists(pid)
        assert server.client.version()  # answers
        assert server.api == f"http://{HOST}:{server.port}"
        with open(f"/proc/{pid}/environ", "rb") as fh:
            assert b"FAULTBED_RUN=test-run-1" in fh.read().split(b"\0")
    assert not process_exists(pid), "toxiproxy-server still running after the context exited"
    with pytest.raises(ToxiproxyError) as raised:
        ToxiproxyClient(server.api, timeout=0.5).version()
    assert raised.value.status is None
    assert os.path.getsize(log_path) > 0, "server output goes to the log file"


def test_stop_kills_a_server_that_does_not_act_on_sigterm(ports: PortReservation,
                                                           tmp_path: os.PathLike[str]) -> None:
    server = ToxiproxyServer(HOST, ports.take()[0], os.path.join(tmp_path, "t.log"), stop_timeout=0.3)
    server.start()
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a stopped process leaves SIGTERM pending; only SIGKILL ends it
    server.stop()
    assert not process_exists(pid)


def test_missing_binary_is_one_clear_setup_error(ports: PortReservation, tmp_path: os.PathLike[str]) -> None:
    missing = os.path.join(tmp_path, "no-such-toxiproxy-server")
    with pytest.raises(SetupError) as raised:
        with ToxiproxyServer(HOST, ports.take()[0], os.path.join(tmp_path, "t.log"), binary=missing):
            pass
    message = str(raised.value)
    assert message == f"toxiproxy-server not found at {missing}: run `make setup`"


def test_server_that_cannot_listen_fails_with_setup_error_naming_the_port(
        ports: PortReservation, tmp_path: os.PathLike[str]) -> None:
    port = ports.take()[0]
    with socket.create_server((HOST, port)):
        with pytest.raises(SetupError) as raised:
            ToxiproxyServer(HOST, port, os.path.join(tmp_path, "t.log"), start_timeout=5).start()
    assert f"{HOST}:{port}" in str(raised.value) and "address already in use" in str(raised.value)


def test_proxy_crud(client: ToxiproxyClient, ports: PortReservation) -> None:
    listen, upstream, other, listen_b = (f"{HOST}:{p}" for p in ports.take(4))
    created = client.create_proxy("a", listen, upstream)
    assert (created.name, created.listen, created.upstream, created.enabled) == ("a", listen, upstream, True)
    assert client.get_proxy("a") == created
    populated = client.populate([ProxyConfig("a", listen, other), ProxyConfig("b", listen_b, upstream)])
    assert [p.name for p in populated] == ["a", "b"]
    assert client.get_proxy("a").upstream == other, "populate replaces a proxy of the same name"
    assert set(client.proxies()) == {"a", "b"}

    assert client.disable_proxy("a").enabled is False
    host, port = listen.rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=1).close()
    assert client.enable_proxy("a").enabled is True
    socket.create_connection((host, int(port)), timeout=1).close()

    client.delete_proxy("b")
    assert set(client.proxies()) == {"a"}


def test_toxic_crud_always_with_toxicity_one(client: ToxiproxyClient, ports: PortReservation) -> None:
    listen, upstream = (f"{HOST}:{p}" for p in ports.take(2))
    client.create_proxy("p", listen, upstream)
    added = client.add_toxic("p", "slow", "latency", "upstream", {"latency": 50, "jitter": 5})
    assert (added.name, added.type, added.stream, added.toxicity) == ("slow", "latency", "upstream", 1.0)
    assert added.attributes == {"latency": 50, "jitter": 5}
    client.add_toxic("p", "cut", "timeout", "downstream", {"timeout": 0})
    assert {t.name for t in client.toxics("p")} == {"slow", "cut"}
    updated = client.update_toxic("p", "slow", {"latency": 80, "jitter": 0})
    assert updated.attributes["latency"] == 80 and updated.toxicity == 1.0
    client.remove_toxic("p", "slow")
    assert [t.name for t in client.get_proxy("p").toxics] == ["cut"]
    client.disable_proxy("p")
    client.reset()
    after = client.get_proxy("p")
    assert after.enabled and after.toxics == (), "reset enables every proxy and removes every toxic"


def test_api_errors_carry_the_server_message_and_status(client: ToxiproxyClient, ports: PortReservation) -> None:
    listen, upstream = (f"{HOST}:{p}" for p in ports.take(2))
    with pytest.raises(ToxiproxyError) as missing:
        client.get_proxy("nope")
    assert (missing.value.status, missing.value.message) == (404, "proxy not found")
    assert "GET /proxies/nope" in str(missing.value)

    client.create_proxy("p", listen, upstream)
    with pytest.raises(ToxiproxyError) as duplicate:
        client.create_proxy("p", listen, upstream)
    assert (duplicate.value.status, duplicate.value.message) == (409, "proxy already exists")

    with pytest.raises(ToxiproxyError) as bad_type:
        client.add_toxic("p", "t", "no-such-toxic", "upstream", {})
    assert (bad_type.value.status, bad_type.value.message) == (400, "invalid toxic type")

    with pytest.raises(ToxiproxyError) as no_upstream:
        client.populate([ProxyConfig("q", listen, "")])
    assert no_upstream.value.status == 400 and "upstream" in no_upstream.value.message


def test_unreachable_api_raises_toxiproxy_error_without_status(ports: PortReservation) -> None:
    client = ToxiproxyClient(f"http://{HOST}:{ports.take()[0]}", timeout=0.5)
    with pytest.raises(ToxiproxyError) as raised:
        client.proxies()
    assert raised.value.status is None and "no answer" in str(raised.value)
