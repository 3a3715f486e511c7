"""The client the workers use: Maelstrom messages from a client id (`c7`) to one node's router.

Each client has its own id, unique in the harness process, and its own msg_ids; a reply is
the message whose body's `in_reply_to` is the request's msg_id (anything else is ignored).
A workload's codec turns an operation into a request body and a reply body into an outcome.
No reply within the timeout, or a lost connection: info (fail for a read, which changed nothing).
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from typing import Any, Protocol

from faultbed.cluster.systems import FAIL, INFO, OK, Outcome
from faultbed.cluster.systems.file.jsonlines import read_line
from faultbed.cluster.systems.maelstrom.protocol import ProtocolError, decode, describe_error, encode, is_definite

ROUTER = "faultbed-router"
_client_ids = itertools.count(1)
_client_ids_lock = threading.Lock()


class Codec(Protocol):
    """How a workload speaks Maelstrom: request bodies out, outcomes back."""

    def request(self, f: str, key: Any, value: Any) -> dict[str, Any]: ...
    def outcome(self, f: str, key: Any, value: Any, body: dict[str, Any]) -> tuple[str, Any, str | None]: ...


def unknown(f: str) -> str:
    """The outcome type of an operation whose fate is unknown: info, but fail for a read (it changed nothing)."""
    return FAIL if f == "read" else INFO


def error_outcome(f: str, body: dict[str, Any]) -> tuple[str, Any, str | None]:
    """An error body: definite => fail; indefinite => info (fail for a read)."""
    return (FAIL if is_definite(body.get("code")) else unknown(f)), None, describe_error(body)


def new_client_id() -> str:
    with _client_ids_lock:
        return f"c{next(_client_ids)}"


class MaelstromClient:
    """One TCP connection to a node's router, speaking as one Maelstrom client."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float, codec: Codec | None) -> None:
        self.address = address
        self.node = node
        self.codec = codec
        self.client_id = new_client_id()
        self._msg_ids = itertools.count(1)
        self._sock: socket.socket | None = socket.create_connection(address, timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        if self.codec is None:
            return Outcome(FAIL, error="this client has no workload to speak for", node=self.node)
        try:
            body = self.call(self.node, self.codec.request(f, key, value), timeout)
        except OSError as exc:
            self.close()
            return Outcome(unknown(f), error=_describe(exc), node=self.node)
        kind, result, error = self.codec.outcome(f, key, value, body)
        return Outcome(kind, result, error, self.node)

    def call(self, dest: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send `body` to `dest`, return the reply's body; OSError on timeout or a lost connection."""
        if self._sock is None:
            raise ConnectionError("connection closed")
        msg_id = next(self._msg_ids)
        deadline = time.monotonic() + timeout
        self._sock.settimeout(max(0.001, timeout))
        self._sock.sendall(encode({"src": self.client_id, "dest": dest, "body": {**body, "msg_id": msg_id}}))
        while True:
            try:
                message = decode(self._read_line(deadline))
            except ProtocolError:
                continue
            if message["body"].get("in_reply_to") == msg_id:
                return message["body"]

    def status(self, timeout: float) -> dict[str, Any]:
        body = self.call(ROUTER, {"type": "status"}, timeout)
        return {"node": body.get("node"), "counts": body.get("counts")}

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _read_line(self, deadline: float) -> bytes:
        assert self._sock is not None
        try:
            line, self._buffer = read_line(self._sock, self._buffer, deadline)
        except ValueError as exc:  # too long: the connection is no longer trusted
            raise ConnectionError(str(exc)) from None
        return line


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def unexpected(f: str, body: dict[str, Any]) -> tuple[str, Any, str | None]:
    """A reply of the wrong type or shape: its effect is unknown."""
    return unknown(f), None, f"unexpected reply {json.dumps(body)[:200]}"
