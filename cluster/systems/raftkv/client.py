"""The raftkv client: one TCP connection to one node's client port, one request at a time.

raftkv speaks the generic json-lines protocol (cluster/systems/file/jsonlines.py) plus a `status`
request, so the connection is that client's. `invoke` never raises for network trouble. Nothing
sent (connect refused, send failed before a byte left): `fail`. Sent but no answer (timeout,
connection lost): `info`, or `fail` for reads (see protocol.uncertain_type). After any of these the
connection is dropped and reopened lazily by the next call, and an answer carrying another request's
id is never taken for this one.
"""

from __future__ import annotations

from typing import Any

from faultbed.cluster.systems import FAIL, Outcome
from faultbed.cluster.systems.file.jsonlines import JsonLinesConnection, NotSent, describe, server_timeout
from faultbed.cluster.systems.raftkv import protocol


class RaftKVClient:
    """Client protocol implementation for raftkv (see cluster.systems.Client)."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float) -> None:
        self.address = address
        self.node = node
        self.connection = JsonLinesConnection(address, node, timeout)
        self.connection.connect(timeout)  # raises OSError: the runner treats an unreachable node as down

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        # The server answers `info` by itself a little before the client gives up, so that a slow
        # Raft is reported by the node (with its reason) rather than as a lost answer.
        request = {"f": f, "key": key, "value": value,
                   "timeout": server_timeout(timeout)}
        try:
            response = self.connection.call(request, timeout)
        except NotSent as exc:
            return Outcome(FAIL, error=str(exc), node=self.node)
        except (OSError, ValueError) as exc:
            return Outcome(protocol.uncertain_type(f), error=describe(exc), node=self.node)
        kind = response.get("type")
        if kind not in ("ok", "fail", "info"):
            self.connection.drop()
            return Outcome(protocol.uncertain_type(f), error=f"bad response: {response!r}", node=self.node)
        return Outcome(kind, response.get("value"), response.get("error"), response.get("node") or self.node)

    def status(self, timeout: float) -> dict[str, Any]:
        """The node's own view: node, leader, state, term, commit_index, ... Raises OSError/ValueError."""
        response = self.connection.call({"f": protocol.STATUS}, timeout)
        value = response.get("value")
        if response.get("type") != "ok" or not isinstance(value, dict):
            raise ValueError(f"bad status response from {self.node}: {response!r}")
        return value

    def close(self) -> None:
        self.connection.drop()

    def __enter__(self) -> "RaftKVClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
