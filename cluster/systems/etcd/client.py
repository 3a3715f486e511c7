"""The etcd client: the v3 JSON gateway over HTTP (requests), one keep-alive connection per client.

Operations and what their outcomes mean:

    read   POST /v3/kv/range   ok with the value (JSON-decoded; a missing key is None);
                               any failure is `fail`: a read changes nothing
    write  POST /v3/kv/put     ok when etcd answered success
    cas    POST /v3/kv/txn     compare value == from, then put `to`: ok when the txn
                               succeeded, fail "cas-mismatch" when the compare failed
                               (etcd's compare on a missing key always fails)

A write or cas is `fail` only when it certainly had no effect: the connection was
refused or never completed (nothing sent), or etcd answered an error raised before
the proposal entered the Raft log (too many requests, too large, proposal dropped).
Everything else (timeout, connection lost, "request timed out", "leader changed")
is `info`. Reads are linearizable (etcd's default) unless `serializable` is set.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import requests  # type: ignore[import]  # Debian ships no stubs

from faultbed.cluster.systems import FAIL, INFO, OK, Outcome

log = logging.getLogger(__name__)

# gRPC errors etcd returns before a request is proposed to Raft: the write certainly did not happen.
NOT_PROPOSED = (
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "raft proposal dropped",
    "etcdserver: not capable",
)
MEMBER_LIST_TIMEOUT = 1.0


def encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def decode(data: str) -> str:
    return base64.b64decode(data).decode()


class EtcdError(Exception):
    """etcd answered with an error (a gRPC status carried as JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EtcdClient:
    """Client protocol implementation for etcd (see cluster.systems.Client)."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float, serializable: bool = False) -> None:
        self.base = f"http://{address[0]}:{address[1]}"
        self.node = node
        self.connect_timeout = timeout
        self.serializable = serializable
        self._session = requests.Session()
        self._member_names: dict[str, str] = {}

    # -- Client protocol -----------------------------------------------------
    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        try:
            if f == "read":
                return Outcome(OK, self._read(str(key), deadline), node=self.node)
            if f == "write":
                self._call("/v3/kv/put", {"key": encode(str(key)), "value": encode(json.dumps(value))}, deadline)
                return Outcome(OK, value, node=self.node)
            if f == "cas":
                expected, new = value
                return self._cas(str(key), expected, new, deadline)
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                return Outcome(FAIL, error="connect: no connection (refused or timed out)", node=self.node)
            if f == "read":
                return Outcome(FAIL, error=_describe(exc), node=self.node)
            return Outcome(INFO, error=_describe(exc), node=self.node)
        except requests.Timeout as exc:  # a read timeout: sent, no answer
            return Outcome(FAIL if f == "read" else INFO, error=_describe(exc), node=self.node)
        except EtcdError as exc:
            certain = f == "read" or exc.message in NOT_PROPOSED
            return Outcome(FAIL if certain else INFO, error=exc.message, node=self.node)
        except (requests.RequestException, ValueError) as exc:
            return Outcome(FAIL if f == "read" else INFO, error=_describe(exc), node=self.node)
        return Outcome(FAIL, error=f"unknown operation {f!r}", node=self.node)

    def status(self, timeout: float) -> dict[str, Any]:
        """This member's view: node, leader (a node name or None), term, raft index. Raises OSError/ValueError."""
        deadline = time.monotonic() + timeout
        try:
            status = self._call("/v3/maintenance/status", {}, deadline)
        except EtcdError as exc:
            raise ValueError(f"{self.node}: status: {exc.message}") from exc
        leader_id = str(status.get("leader") or "0")
        leader = None
        if leader_id != "0":
            if leader_id not in self._member_names:
                self._member_names = self._members(deadline)
            leader = self._member_names.get(leader_id)
        header = status.get("header") or {}
        return {"node": self.node, "leader": leader, "member_id": header.get("member_id"),
                "term": int(status.get("raftTerm") or 0), "raft_index": int(status.get("raftIndex") or 0)}

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "EtcdClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations ----------------------------------------------------------
    def _read(self, key: str, deadline: float) -> Any:
        request: dict[str, Any] = {"key": encode(key)}
        if self.serializable:
            request["serializable"] = True
        kvs = self._call("/v3/kv/range", request, deadline).get("kvs") or []
        return json.loads(decode(kvs[0]["value"])) if kvs and kvs[0].get("value") else None

    def _cas(self, key: str, expected: Any, new: Any, deadline: float) -> Outcome:
        encoded = encode(key)
        txn = {"compare": [{"key": encoded, "target": "VALUE", "result": "EQUAL",
                            "value": encode(json.dumps(expected))}],
               "success": [{"request_put": {"key": encoded, "value": encode(json.dumps(new))}}]}
        if self._call("/v3/kv/txn", txn, deadline).get("succeeded"):
            return Outcome(OK, [expected, new], node=self.node)
        return Outcome(FAIL, error="cas-mismatch", node=self.node)

    def _members(self, deadline: float) -> dict[str, str]:
        """Member id -> name, from the member list (served locally by the member)."""
        members = self._call("/v3/cluster/member/list", {}, min(deadline, time.monotonic() + MEMBER_LIST_TIMEOUT))
        return {str(m["ID"]): str(m.get("name") or "") for m in members.get("members") or []}

    def _call(self, path: str, body: dict[str, Any], deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise requests.Timeout("no time left")
        response = self._session.post(self.base + path, json=body,
                                      timeout=(min(self.connect_timeout, remaining), remaining))
        try:
            answer = response.json()
        except ValueError:
            raise EtcdError(response.status_code, f"HTTP {response.status_code}: {response.text[:200]!r}") from None
        if response.status_code != 200 or not isinstance(answer, dict) or "error" in answer:
            message = answer.get("message") or answer.get("error") if isinstance(answer, dict) else None
            raise EtcdError(response.status_code, str(message or f"HTTP {response.status_code}"))
        return answer


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was refused or never completed, so the request never left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return type(inner).__name__ in ("NewConnectionError", "ConnectTimeoutError")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
