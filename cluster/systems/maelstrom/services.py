"""Maelstrom's key-value services, hosted by faultbed: lin-kv, seq-kv, lww-kv (its doc/services.md).

A node calls a service by sending to its name: `{"dest": "lin-kv", "body": {"type": "read", "key": k}}`,
with `write {key, value}` and `cas {key, from, to, create_if_not_exists}` too; errors 20
(key-does-not-exist) and 22 (precondition-failed) as Maelstrom's.

The services live in the router of the first node (n1): another node's router sends service
messages over its link to n1, through the mesh, so a partition that cuts a node from n1 cuts it
from the services. The services are not the node's program: killing n1 kills its program and
router, and the services are unavailable until it restarts (requests go unanswered: indefinite),
but their state is kept in n1's data directory and survives; pausing n1 pauses them too.

- lin-kv: one copy, each operation applied atomically: linearizable.
- seq-kv: sequentially consistent: each node sees states in order, but a read may return a state
  older than the latest one (never older than what that node saw or wrote before).
- lww-kv: a replica per calling node; a write lands on the caller's replica and reaches the others
  after up to LWW_DELAY seconds; the newest write wins: eventually consistent.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any, Callable

LIN_KV, SEQ_KV, LWW_KV = "lin-kv", "seq-kv", "lww-kv"
SERVICES = (LIN_KV, SEQ_KV, LWW_KV)
STATE_FILE = "maelstrom-services.json"
SEQ_HISTORY = 64     # states seq-kv keeps for stale reads
LWW_DELAY = 1.0      # the most a lww-kv write waits before reaching another node's replica
KEY_DOES_NOT_EXIST, PRECONDITION_FAILED, MALFORMED = 20, 22, 12
SAVED = "(saved)"


def _key(body: dict[str, Any]) -> str:
    return json.dumps(body.get("key"), sort_keys=True)  # any JSON key; the same key always the same text


def apply(state: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One request on one map: (reply body, the new map or None when unchanged)."""
    kind, key = body.get("type"), _key(body)
    if kind == "read":
        if key not in state:
            return {"type": "error", "code": KEY_DOES_NOT_EXIST, "text": "key does not exist"}, None
        return {"type": "read_ok", "value": state[key]}, None
    if kind == "write":
        return {"type": "write_ok"}, {**state, key: body.get("value")}
    if kind == "cas":
        if key not in state and not body.get("create_if_not_exists"):
            return {"type": "error", "code": KEY_DOES_NOT_EXIST, "text": "key does not exist"}, None
        if key in state and state[key] != body.get("from"):
            return {"type": "error", "code": PRECONDITION_FAILED,
                    "text": f"expected {json.dumps(body.get('from'))}, had {json.dumps(state[key])}"}, None
        return {"type": "cas_ok"}, {**state, key: body.get("to")}
    return {"type": "error", "code": MALFORMED, "text": f"unknown request type {kind!r}"}, None


class ServiceHost:
    """The three services of one run, in n1's router; `reply(message_for_node)` sends answers."""

    def __init__(self, data_dir: str, reply: Callable[[dict[str, Any]], None], seed: int = 0) -> None:
        self.path = os.path.join(data_dir, STATE_FILE)
        self.reply = reply
        self.random = random.Random(seed)
        self.lin: dict[str, Any] = {}
        self.seq: list[dict[str, Any]] = [{}]           # the last SEQ_HISTORY states, oldest first
        self.seq_base = 0                               # the version of seq[0]
        self.seq_seen: dict[str, int] = {}              # node -> the newest version it has seen
        self.lww: dict[str, dict[str, tuple[float, Any]]] = {}  # node -> key -> (time written, value)
        self._load()

    @staticmethod
    def handles(dest: str) -> bool:
        return dest in SERVICES

    def handle(self, message: dict[str, Any]) -> None:
        body, service, caller = message["body"], message["dest"], message["src"]
        if service == LIN_KV:
            answer, changed = apply(self.lin, body)
            if changed is not None:
                self.lin = changed
        elif service == SEQ_KV:
            answer = self._seq(caller, body)
        else:
            answer = self._lww(caller, body)
        if answer.get("type") in ("write_ok", "cas_ok"):
            self._save()  # before the answer leaves: an acknowledged write survives a kill of n1
        if "msg_id" in body:
            answer["in_reply_to"] = body["msg_id"]
        self.reply({"src": service, "dest": caller, "body": answer})

    # -- seq-kv: a read may see an older state, never one older than the caller saw -----------
    def _seq(self, caller: str, body: dict[str, Any]) -> dict[str, Any]:
        latest = self.seq_base + len(self.seq) - 1
        seen = max(self.seq_seen.get(caller, self.seq_base), self.seq_base)
        if body.get("type") == "read":
            version = self.random.randint(seen, latest) if self.random.random() < 0.5 else latest
            self.seq_seen[caller] = version
            return apply(self.seq[version - self.seq_base], body)[0]
        answer, changed = apply(self.seq[-1], body)
        if changed is not None:
            self.seq.append(changed)
            if len(self.seq) > SEQ_HISTORY:
                self.seq.pop(0)
                self.seq_base += 1
        self.seq_seen[caller] = self.seq_base + len(self.seq) - 1
        return answer

    # -- lww-kv: a replica per caller, writes spread later, the newest wins -------------------
    def _lww(self, caller: str, body: dict[str, Any]) -> dict[str, Any]:
        if caller not in self.lww:
            self.lww[caller] = self._lww_merged()
        replica = self.lww[caller]
        answer, changed = apply({k: v for k, (_, v) in replica.items()}, body)
        if changed is not None:
            key = _key(body)
            stamp = asyncio.get_running_loop().time()
            self._lww_merge(caller, key, stamp, changed[key])
            for other in list(self.lww):
                if other != caller:
                    asyncio.get_running_loop().call_later(self.random.uniform(0, LWW_DELAY), self._lww_merge,
                                                          other, key, stamp, changed[key])
        return answer

    def _lww_merge(self, node: str, key: str, stamp: float, value: Any) -> None:
        replica = self.lww.setdefault(node, {})
        if key not in replica or replica[key][0] <= stamp:
            replica[key] = (stamp, value)

    def _lww_merged(self) -> dict[str, tuple[float, Any]]:
        """Every replica merged, newest write per key: what all replicas converge to."""
        merged: dict[str, tuple[float, Any]] = {}
        for replica in self.lww.values():
            for key, (stamp, value) in replica.items():
                if key not in merged or merged[key][0] <= stamp:
                    merged[key] = (stamp, value)
        return merged

    # -- state that outlives a kill of n1 -------------------------------------------------------
    def _save(self) -> None:
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as fh:
            json.dump({"lin": self.lin, "seq": self.seq[-1], "lww": self._lww_merged()}, fh)
        os.replace(temporary, self.path)

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                saved = json.load(fh)
            self.lin = dict(saved["lin"])
            self.seq = [dict(saved["seq"])]
            merged = {str(k): (float(stamp), value) for k, (stamp, value) in saved["lww"].items()}
            self.lww = {SAVED: merged}  # a replica no node reads: new replicas start from the merged view
        except (OSError, ValueError, KeyError, TypeError):
            pass
