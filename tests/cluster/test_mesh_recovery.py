"""The mesh survives a Toxiproxy that stops answering: a wedged proxy, a stopped server, a dead one.

These wedge the real toxiproxy-server v2.12.0 the way a run does (its issues #159,
#210): a toxic change on a link whose receiver does not read (a paused node) waits
for it, holding the proxy's lock; if the receiver then dies, the proxy never answers
again. The "nodes" here are plain sockets in the test: a sink that never reads stands
for a SIGSTOPped node, a reset connection for a SIGKILLed one.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from typing import Any, Iterator

import pytest

from faultbed.cluster.backend import Link
from faultbed.cluster.mesh import Mesh, MeshStateError
from faultbed.cluster.ports import PortReservation
from faultbed.cluster.toxiproxy import ToxiproxyClient, ToxiproxyError, ToxiproxyServer
from tests.conftest import wait_until_stopped

HOST = "127.0.0.1"
CALL_TIMEOUT = 1.0  # the mesh's client gives up on a call after this long (5 s in runs)


class Sink:
    """A listening "node" that accepts and never reads, like a paused process."""

    def __init__(self, port: int) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, port))
        self.listener.listen()
        self.conns: list[socket.socket] = []

    def accept(self) -> None:
        self.listener.settimeout(5.0)
        conn, _ = self.listener.accept()
        self.conns.append(conn)

    def die(self) -> None:
        """Reset every connection (SO_LINGER 0: RST), like a SIGKILLed process."""
        for conn in self.conns:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        self.conns.clear()

    def close(self) -> None:
        self.die()
        self.listener.close()


@pytest.fixture
def rig(tmp_path: Any) -> Iterator[tuple[ToxiproxyServer, Mesh, Link, Sink, list[tuple[str, str, dict[str, Any]]]]]:
    """A server, a one-link mesh a->b whose client gives up after CALL_TIMEOUT, a sink as b, recorded recoveries."""
    with PortReservation(HOST) as ports:
        api, listen, upstream = ports.take(3)
        with ToxiproxyServer(HOST, api, os.path.join(tmp_path, "toxiproxy.log")) as server:
            link = Link("a", "b", "peer", listen=f"{HOST}:{listen}", upstream=f"{HOST}:{upstream}")

            def restart() -> ToxiproxyClient:
                server.restart()
                return ToxiproxyClient(server.api, timeout=CALL_TIMEOUT)

            mesh = Mesh(ToxiproxyClient(server.api, timeout=CALL_TIMEOUT), [link], restart_server=restart)
            mesh.create()
            events: list[tuple[str, str, dict[str, Any]]] = []
            mesh.add_listener(lambda f, value, details: events.append((f, value, details)))
            sink = Sink(upstream)
            try:
                yield server, mesh, link, sink, events
            finally:
                sink.close()


def fill_until_blocked(link: Link, sink: Sink) -> socket.socket:
    """Connect through the proxy and write until every buffer up to the non-reading sink is full."""
    host, port = link.listen.rsplit(":", 1)
    writer = socket.create_connection((host, int(port)), timeout=5.0)
    sink.accept()
    writer.setblocking(False)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 0.5:  # half a second without progress: blocked
        try:
            if writer.send(b"x" * 65536):
                quiet_since = time.monotonic()
        except BlockingIOError:
            time.sleep(0.02)
    return writer


def server_view(server: ToxiproxyServer, proxy: str) -> tuple[bool, set[str]]:
    seen = ToxiproxyClient(server.api, timeout=2.0).get_proxy(proxy)
    return seen.enabled, {t.name for t in seen.toxics}


def test_a_toxic_change_on_a_proxy_wedged_by_a_dead_receiver_completes_by_recreating_it(rig: Any) -> None:
    server, mesh, link, sink, events = rig
    writer = fill_until_blocked(link, sink)
    threading.Timer(0.3, sink.die).start()  # the paused node is killed while the call waits for it
    started = time.monotonic()
    mesh.partition({"b": {"a"}})  # b drops a's bytes: a toxic on the upstream of a->b, the blocked stream
    took = time.monotonic() - started

    assert [f for f, _, _ in events] == ["toxiproxy-recreated"], events
    assert "no answer" in events[0][2]["error"], "the toxic call itself got no answer (the wedge happened)"
    assert events[0][2]["proxy"] == link.name
    assert took < CALL_TIMEOUT + 3, f"recovery took {took:.1f}s"
    assert server_view(server, link.name) == (True, {"partition-upstream"}), "the change is in place after all"
    assert mesh.verify() == []
    mesh.heal()
    assert mesh.is_healed()
    writer.close()


def test_without_recovery_the_wedge_is_permanent(rig: Any) -> None:
    """The condition the mesh recovers from is real: the old proxy answers no call, not even later."""
    server, mesh, link, sink, _ = rig
    writer = fill_until_blocked(link, sink)
    threading.Timer(0.3, sink.die).start()
    client = ToxiproxyClient(server.api, timeout=CALL_TIMEOUT)
    with pytest.raises(ToxiproxyError) as raised:
        client.add_toxic(link.name, "cut", "timeout", "upstream", {"timeout": 0})
    assert raised.value.status is None
    time.sleep(0.5)
    with pytest.raises(ToxiproxyError) as later:
        client.get_proxy(link.name)
    assert later.value.status is None, "the wedged proxy answered again"
    assert client.version(), "the server itself still answers"
    writer.close()


def test_a_stopped_server_is_restarted_with_every_proxy_as_recorded(rig: Any) -> None:
    server, mesh, link, sink, events = rig
    mesh.partition({"b": {"a"}})
    old_pid = server.pid
    os.kill(old_pid, signal.SIGSTOP)  # the whole API hangs, as on an overloaded machine or a wedged server
    try:
        wait_until_stopped(old_pid)
        fault = mesh.latency(200, links=[link], stream="downstream")
    finally:
        if server.pid == old_pid:
            os.kill(old_pid, signal.SIGCONT)
    assert [f for f, _, _ in events] == ["toxiproxy-restarted"], events
    assert server.pid != old_pid
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)
    assert server_view(server, link.name) == (True, {"partition-upstream", f"{fault.name}-downstream"})
    mesh.remove_link_fault(fault)
    mesh.heal()
    assert mesh.is_healed()


def test_a_dead_server_is_restarted_and_heal_leaves_a_working_clean_proxy(rig: Any) -> None:
    server, mesh, link, sink, events = rig
    mesh.latency(100, links=[link])
    os.kill(server.pid, signal.SIGKILL)
    mesh.heal()
    assert [f for f, _, _ in events] == ["toxiproxy-restarted"], events
    assert server_view(server, link.name) == (True, set())
    host, port = link.listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2.0) as conn:
        sink.accept()
        conn.sendall(b"through")
        sink.conns[-1].settimeout(2.0)
        assert sink.conns[-1].recv(16) == b"through", "the restarted proxy carries bytes"


def test_a_mesh_that_cannot_restart_its_server_says_so(tmp_path: Any) -> None:
    with PortReservation(HOST) as ports:
        api, listen, upstream = ports.take(3)
        with ToxiproxyServer(HOST, api, os.path.join(tmp_path, "toxiproxy.log")) as server:
            link = Link("a", "b", "peer", listen=f"{HOST}:{listen}", upstream=f"{HOST}:{upstream}")
            mesh = Mesh(ToxiproxyClient(server.api, timeout=CALL_TIMEOUT), [link])
            mesh.create()
            os.kill(server.pid, signal.SIGKILL)
            with pytest.raises(MeshStateError, match="cannot be restarted"):
                mesh.partition({"b": {"a"}})
            assert mesh.partitions() == {}, "a partition that could not be applied is not recorded as active"
