"""The json-lines client: one TCP connection to a node's client port, one JSON request per line.

    request:  {"id": 7, "f": "cas", "key": "k1", "value": [1, 2], "timeout": 0.9}
    reply:    {"id": 7, "type": "ok" | "fail" | "info", "value": ..., "error": "..."}

A reply's `id` is optional; when present it must match, so a late answer is never taken
for the next request. Nothing sent: fail. Sent but no answer: info (fail for a read).
"""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from typing import Any

from faultbed.cluster.systems import FAIL, INFO, OK, Outcome

log = logging.getLogger(__name__)

READ_OPS = frozenset({"read", "read-ledger"})
MAX_LINE = 16 * 1024 * 1024
# The node is told to answer this much before the client gives up, so it can say info itself.
SERVER_MARGIN = 0.1


def server_timeout(timeout: float) -> float:
    """The deadline a request tells the node: a little before the client gives up, so it can say info itself."""
    return round(max(0.01, timeout - min(SERVER_MARGIN, timeout / 5)), 3)


def uncertain(f: str) -> str:
    """The outcome of an operation whose fate is unknown: a read changed nothing (fail), others info."""
    return FAIL if f in READ_OPS else INFO


class NotSent(OSError):
    """Sending failed before any byte left: the request certainly had no effect."""


class JsonLinesConnection:
    """One TCP connection speaking JSON lines; reconnects lazily after any trouble."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float) -> None:
        self.address = address
        self.node = node
        self.connect_timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 0

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send `request`, return the reply; OSError/ValueError on trouble (NotSent when nothing left)."""
        deadline = time.monotonic() + timeout
        if self._sock is None or self._peer_closed():
            self.drop()
            try:
                self.connect(min(self.connect_timeout, timeout))
            except OSError as exc:
                raise NotSent(f"connect: {describe(exc)}") from exc
        self._next_id += 1
        request_id = self._next_id
        try:
            self._send((json.dumps({"id": request_id, **request}, separators=(",", ":")) + "\n").encode(), deadline)
            while True:
                reply = json.loads(self._read_line(deadline))
                if not isinstance(reply, dict):
                    raise ValueError(f"reply is not a JSON object: {reply!r}")
                if reply.get("id", request_id) == request_id:
                    return reply
                log.warning("%s: ignoring a late reply to request %r", self.node, reply.get("id"))
        except (OSError, ValueError):
            self.drop()
            raise

    def drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._buffer = b""

    def connect(self, timeout: float) -> None:
        """Open the connection now (OSError when the node cannot be reached)."""
        sock = socket.create_connection(self.address, timeout=max(0.01, timeout))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buffer = b""

    def _peer_closed(self) -> bool:
        assert self._sock is not None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            return bool(readable) and self._sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _send(self, data: bytes, deadline: float) -> None:
        assert self._sock is not None
        sent = 0
        while sent < len(data):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError("timed out sending")
                self._sock.settimeout(remaining)
                sent += self._sock.send(data[sent:])
            except OSError as exc:
                if sent == 0:
                    raise NotSent(f"send: {describe(exc)}") from exc
                raise

    def _read_line(self, deadline: float) -> bytes:
        assert self._sock is not None
        line, self._buffer = read_line(self._sock, self._buffer, deadline)
        return line


def read_line(sock: socket.socket, buffer: bytes, deadline: float) -> tuple[bytes, bytes]:
    """The next line from `sock` after what `buffer` holds: (line, what is left). TimeoutError at
    `deadline`, ConnectionError when the peer closes, ValueError past MAX_LINE."""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timeout")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by node")
        buffer += chunk
        if len(buffer) > MAX_LINE:
            raise ValueError("reply line too long")
    line, _, rest = buffer.partition(b"\n")
    return line, rest


def outcome_of(reply: dict[str, Any], f: str, node: str) -> Outcome:
    """A reply line as an Outcome; a malformed one is an unknown outcome."""
    kind = reply.get("type")
    if kind not in (OK, FAIL, INFO):
        return Outcome(uncertain(f), error=f"bad reply: {json.dumps(reply)[:200]}", node=node)
    error = reply.get("error")
    answered_by = reply.get("node")  # optional: the node that answered (raftkv names the one that applied it)
    return Outcome(kind, reply.get("value"), None if error is None else str(error),
                   answered_by if isinstance(answered_by, str) and answered_by else node)


class JsonLinesClient:
    """Operations as JSON lines over TCP to the node itself."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float) -> None:
        self.node = node
        self.connection = JsonLinesConnection(address, node, timeout)

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        request = {"f": f, "key": key, "value": value,
                   "timeout": server_timeout(timeout)}
        try:
            reply = self.connection.call(request, timeout)
        except NotSent as exc:
            return Outcome(FAIL, error=str(exc), node=self.node)
        except (OSError, ValueError) as exc:
            return Outcome(uncertain(f), error=describe(exc), node=self.node)
        if reply.get("type") not in (OK, FAIL, INFO):
            self.connection.drop()  # a node that says nonsense is not trusted with the next request
        return outcome_of(reply, f, self.node)

    def close(self) -> None:
        self.connection.drop()


def describe(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
