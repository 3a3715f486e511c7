"""The broker's client port: requests -> logged commands -> honest outcomes.

Requests use raftkv's wire format (cluster/systems/raftkv/protocol.py); `key` is the
queue name:

    publish  value {"msg_id", "body"}     -> {"msg_id", "seq", "duplicate"} after commit
    consume  value null | {"lease_seconds"} -> {"msg_id", "body", "lease", "deadline", "deliveries"}
                                             or null when no message is ready
    ack      value {"msg_id", "lease"}    -> {"msg_id", "acked": true}; fail when the lease
                                             is unknown or expired (nothing changed)
    depth    value null                   -> {"ready": n, "leased": n}
    status                                -> {"node", "leader", "state", "term", ...}

Every command, depth included, goes through the Raft log and carries `now`, this
node's clock when it accepted the request (see queues.py for why). Verdicts of
pysyncobj map to outcomes exactly as in raftkv's server.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faultbed.cluster.systems import FAIL, INFO, OK
from faultbed.cluster.systems.raftkv import protocol
from faultbed.cluster.systems.raftkv.replica import Replica
from faultbed.cluster.systems.raftkv.server import request_timeout, response_for, verdict

log = logging.getLogger(__name__)

OPERATIONS = ("publish", "consume", "ack", "depth")
Answer = tuple[str, Any, str | None]  # (type, value, error)


class BadRequest(ValueError):
    """A request that cannot become a command: answered fail, nothing happens."""


def command_for(f: str, queue: Any, value: Any, now: float, dedupe: bool) -> dict[str, Any]:
    """The logged command for one request; raises BadRequest for malformed input."""
    if not isinstance(queue, str) or not queue:
        raise BadRequest(f"key must name a queue, got {queue!r}")
    command: dict[str, Any] = {"f": f, "queue": queue, "now": now}
    if f == "publish":
        if not isinstance(value, dict) or not isinstance(value.get("msg_id"), str):
            raise BadRequest('publish value must be {"msg_id": str, "body": any}')
        command.update(msg_id=value["msg_id"], body=value.get("body"), dedupe=dedupe)
    elif f == "consume" and isinstance(value, dict) and "lease_seconds" in value:
        command["lease_seconds"] = float(value["lease_seconds"])
    elif f == "ack":
        if isinstance(value, str):
            value = {"msg_id": value}
        if not isinstance(value, dict) or not isinstance(value.get("msg_id"), str):
            raise BadRequest('ack value must be {"msg_id": str, "lease": int}')
        command.update(msg_id=value["msg_id"], lease=value.get("lease"))
    return command


class BrokerService:
    """Turns one decoded request into one answer; holds the bug switches."""

    def __init__(self, replica: Replica, bugs: frozenset[str]) -> None:
        self.replica = replica
        self.ack_before_replicate = "ack-before-replicate" in bugs
        self.dedupe = "no-dedupe" not in bugs

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        f = request.get("f")
        if f == protocol.STATUS:
            answer: Answer = (OK, self.replica.status(), None)
        elif f not in OPERATIONS:
            answer = (FAIL, None, f"unknown-op: {f!r}")
        else:
            deadline = time.monotonic() + request_timeout(request.get("timeout"))
            try:
                command = command_for(str(f), request.get("key"), request.get("value"), time.time(), self.dedupe)
                answer = self._perform(command, deadline)
            except (BadRequest, TypeError, ValueError) as exc:
                answer = (FAIL, None, f"bad-request: {exc}")
        return response_for(request, answer, self.replica)

    def _perform(self, command: dict[str, Any], deadline: float) -> Answer:
        f = command["f"]
        try:
            pending = self.replica.submit("execute", command)
        except Exception as exc:  # pysyncobj may have queued it before raising
            log.exception("submitting %s failed", f)
            return INFO, None, f"submit: {exc}"
        if f == "publish" and self.ack_before_replicate and self.replica.is_leader():
            # The bug: the leader has only queued the entry; nothing is replicated yet.
            return OK, {"msg_id": command["msg_id"], "seq": None, "duplicate": False}, None
        kind, outcome, error = verdict(f, pending, deadline)
        if kind != OK:
            return kind, None, error
        if "error" in outcome:
            return FAIL, None, outcome["error"]  # applied, and it changed nothing
        return OK, outcome["result"], None
