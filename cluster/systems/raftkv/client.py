"""The raftkv client: one TCP connection to one node's client port, one request at a time.

raftkv speaks the generic json-lines protocol (cluster/systems/file/jsonlines.py), so its client is
that client plus a `status` request and an eager connect. `invoke` never raises for network
trouble. Nothing sent (connect refused, send failed before a byte left): `fail`. Sent but no answer
(timeout, connection lost): `info`, or `fail` for reads. After any of these the connection is
dropped and reopened lazily by the next call, and an answer carrying another request's id is never
taken for this one. The node tells each request's deadline a little before the client gives up, so
a slow Raft is reported by the node (with its reason) rather than as a lost answer.
"""

from __future__ import annotations

from typing import Any

from faultbed.cluster.systems.file.jsonlines import JsonLinesClient
from faultbed.cluster.systems.raftkv import protocol


class RaftKVClient(JsonLinesClient):
    """Client protocol implementation for raftkv (see cluster.systems.Client)."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float) -> None:
        super().__init__(address, node, timeout)
        self.address = address
        self.connection.connect(timeout)  # raises OSError: the runner treats an unreachable node as down

    def status(self, timeout: float) -> dict[str, Any]:
        """The node's own view: node, leader, state, term, commit_index, ... Raises OSError/ValueError."""
        response = self.connection.call({"f": protocol.STATUS}, timeout)
        value = response.get("value")
        if response.get("type") != "ok" or not isinstance(value, dict):
            raise ValueError(f"bad status response from {self.node}: {response!r}")
        return value

    def __enter__(self) -> "RaftKVClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
