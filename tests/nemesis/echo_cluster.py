"""Real TCP echo servers as nodes, joined by a real Toxiproxy mesh (for mesh and nemesis tests).

Each node records every byte it receives and echoes it back; `broadcast` makes a
node send on all its open connections, so tests can see either direction of a
link on its own.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

from faultbed.cluster.backend import Link
from faultbed.cluster.mesh import Mesh
from faultbed.cluster.ports import PortReservation
from faultbed.cluster.toxiproxy import ToxiproxyServer

HOST = "127.0.0.1"


class EchoNode:
    """A TCP server on a thread: records what it receives, echoes it, can broadcast."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self._received = bytearray()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server((HOST, port), reuse_port=False)
        self._listener.settimeout(0.1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"echo-{name}", daemon=True)
        self._thread.start()

    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def broadcast(self, data: bytes) -> int:
        """Send `data` on every open connection; returns how many took it."""
        sent = 0
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.sendall(data)
                sent += 1
            except OSError:
                pass
        return sent

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            conn.settimeout(0.1)
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                data = conn.recv(65536)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
            if not data:
                break
            with self._lock:
                self._received.extend(data)
            try:
                conn.sendall(data)
            except OSError:
                break
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        conn.close()


class Connection:
    """A client socket through one proxy, as node `src` dialing node `dst`."""

    def __init__(self, link: Link, timeout: float = 2.0) -> None:
        self.link = link
        host, port = link.listen.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, size: int, timeout: float) -> bytes:
        """Up to `size` bytes arriving within `timeout` (fewer when the deadline passes or the peer closes)."""
        deadline = time.monotonic() + timeout
        chunks = bytearray()
        while len(chunks) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(size - len(chunks))
            except (TimeoutError, socket.timeout):
                break
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.extend(data)
        return bytes(chunks)

    def is_closed(self, timeout: float) -> bool:
        """True when the peer closes (or resets) the connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (TimeoutError, socket.timeout):
                return False
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


@dataclass
class EchoMesh:
    """Echo nodes, their links and the mesh over them."""

    server: ToxiproxyServer
    mesh: Mesh
    nodes: dict[str, EchoNode]
    links: list[Link]

    def link(self, src: str, dst: str) -> Link:
        return self.mesh.links_between(src, dst)[0]

    def connect(self, src: str, dst: str, timeout: float = 2.0) -> Connection:
        return Connection(self.link(src, dst), timeout)


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def echo_mesh(server: ToxiproxyServer, names: Sequence[str] = ("n1", "n2", "n3"),
              ports: Sequence[str] = ("peer",)) -> Iterator[EchoMesh]:
    """Echo nodes `names`, one proxy per directed pair and port, on a running Toxiproxy `server`."""
    with PortReservation(HOST) as reservation:
        node_ports = {n: dict(zip(ports, reservation.take(len(ports)))) for n in names}
        nodes = {n: EchoNode(n, node_ports[n][ports[0]]) for n in names}
        extra = [EchoNode(f"{n}-{p}", node_ports[n][p]) for n in names for p in ports[1:]]
        links = [Link(src, dst, port, listen=f"{HOST}:{reservation.take()[0]}",
                      upstream=f"{HOST}:{node_ports[dst][port]}")
                 for src in names for dst in names if src != dst for port in ports]
        mesh = Mesh(server.client, links)
        try:
            mesh.create()
            yield EchoMesh(server, mesh, nodes, links)
        finally:
            mesh.delete()
            for node in list(nodes.values()) + extra:
                node.close()
