"""The raftkv client: one TCP connection to one node's client port, one request at a time.

`invoke` never raises for network trouble. Nothing sent (connect refused, send failed
before a byte left): `fail`. Sent but no answer (timeout, connection lost): `info`,
or `fail` for reads (see protocol.uncertain_type). After any of these the connection
is dropped and reopened lazily by the next call, and every answer must carry its
request's id, so a late answer is never taken for the next request.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from typing import Any

from faultbed.cluster.systems import FAIL, Outcome
from faultbed.cluster.systems.raftkv import protocol

log = logging.getLogger(__name__)

# The server answers `info` by itself this much before the client gives up, so that
# a slow Raft is reported by the node (with its reason) rather than as a lost answer.
SERVER_MARGIN = 0.1


class RaftKVClient:
    """Client protocol implementation for raftkv (see cluster.systems.Client)."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float) -> None:
        self.address = address
        self.node = node
        self.connect_timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 0
        self._connect(timeout)  # raises OSError: the runner treats an unreachable node as down

    # -- Client protocol -----------------------------------------------------
    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        if self._sock is None or self._peer_closed():
            self._drop()
            try:
                self._connect(min(self.connect_timeout, timeout))
            except OSError as exc:
                return Outcome(FAIL, error=f"connect: {_describe(exc)}", node=self.node)
        request = {"f": f, "key": key, "value": value,
                   "timeout": round(max(0.01, timeout - min(SERVER_MARGIN, timeout / 5)), 3)}
        try:
            response = self._call(request, deadline)
        except _NotSent as exc:
            self._drop()
            return Outcome(FAIL, error=f"send: {exc}", node=self.node)
        except (OSError, ValueError) as exc:
            self._drop()
            return Outcome(protocol.uncertain_type(f), error=_describe(exc), node=self.node)
        kind = response.get("type")
        if kind not in ("ok", "fail", "info"):
            self._drop()
            return Outcome(protocol.uncertain_type(f), error=f"bad response: {response!r}", node=self.node)
        return Outcome(kind, response.get("value"), response.get("error"), response.get("node") or self.node)

    def status(self, timeout: float) -> dict[str, Any]:
        """The node's own view: node, leader, state, term, commit_index, ... Raises OSError/ValueError."""
        deadline = time.monotonic() + timeout
        if self._sock is None or self._peer_closed():
            self._drop()
            self._connect(timeout)
        try:
            response = self._call({"f": protocol.STATUS}, deadline)
        except (OSError, ValueError):
            self._drop()
            raise
        value = response.get("value")
        if response.get("type") != "ok" or not isinstance(value, dict):
            raise ValueError(f"bad status response from {self.node}: {response!r}")
        return value

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> "RaftKVClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection ----------------------------------------------------------
    def _connect(self, timeout: float) -> None:
        sock = socket.create_connection(self.address, timeout=max(0.01, timeout))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buffer = b""

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._buffer = b""

    def _peer_closed(self) -> bool:
        """True when the server has closed an idle connection (so a send would be wasted)."""
        assert self._sock is not None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return False
            return self._sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _call(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        assert self._sock is not None
        self._next_id += 1
        request_id = self._next_id
        self._send(protocol.encode({"id": request_id, **request}), deadline)
        while True:
            response = protocol.decode(self._read_line(deadline))
            if response.get("id") == request_id:
                return response
            log.warning("%s: ignoring answer to request %r while waiting for %d",
                        self.node, response.get("id"), request_id)

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
                    raise _NotSent(_describe(exc)) from exc
                raise

    def _read_line(self, deadline: float) -> bytes:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timeout")
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by node")
            self._buffer += chunk
            if len(self._buffer) > protocol.MAX_LINE:
                raise ValueError("response line too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


class _NotSent(OSError):
    """Sending failed before any byte of the request left: the request certainly had no effect."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) or isinstance(exc, socket.timeout):
        return "timeout"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
