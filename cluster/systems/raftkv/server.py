"""The client port: newline-delimited JSON requests, answered from the Raft replica.

Every data operation, reads included, is a replicated command: it answers after its
log entry is committed and applied on this node, so reads are linearizable (pysyncobj
has no ReadIndex or leases). A follower does not redirect: pysyncobj forwards the
command to the leader itself and this node answers once it has applied the entry.
Responses carry `leader` as a hint for people reading logs; the client ignores it.

How pysyncobj's verdicts map to outcomes (see pysyncobj/syncobj.py):

    SUCCESS          ok (cas whose `from` did not match: fail "cas-mismatch")
    MISSING_LEADER   fail: no leader known, nothing was sent anywhere
    NOT_LEADER       fail: the node we forwarded to was no longer leader and dropped it
    QUEUE_FULL       fail: never queued
    DISCARDED        fail: another entry was committed at our entry's index, so ours never will be
    REQUEST_DENIED   fail: refused before appending (membership changes only)
    LEADER_CHANGED   info: the leader changed before telling us the entry's index; it may
                     have appended it and may still commit it
    no verdict by the deadline: info (fail for reads: a read has no effect)
"""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from typing import Any

from pysyncobj import FAIL_REASON

from faultbed.cluster.systems import FAIL, INFO, OK
from faultbed.cluster.systems.raftkv import protocol
from faultbed.cluster.systems.raftkv.replica import Pending, Replica
from faultbed.cluster.systems.raftkv.state import CAS_MISMATCH, NOT_A_STRING

log = logging.getLogger(__name__)

REASONS = {
    FAIL_REASON.QUEUE_FULL: "queue-full",
    FAIL_REASON.MISSING_LEADER: "no-leader",
    FAIL_REASON.DISCARDED: "discarded",
    FAIL_REASON.NOT_LEADER: "not-leader",
    FAIL_REASON.LEADER_CHANGED: "leader-changed",
    FAIL_REASON.REQUEST_DENIED: "request-denied",
}
CERTAIN_FAILURES = frozenset({FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER,
                              FAIL_REASON.DISCARDED, FAIL_REASON.REQUEST_DENIED})
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 60.0
IDLE_TIMEOUT = 3600.0  # an idle client connection is closed after this long

Answer = tuple[str, Any, str | None]  # (type, value, error)


class BadRequest(ValueError):
    """A request that cannot be submitted as given: answered fail, nothing happens."""


class KVService:
    """Turns one decoded request into one answer; holds the bug switches."""

    def __init__(self, replica: Replica, bugs: frozenset[str]) -> None:
        self.replica = replica
        self.stale_reads = "stale-reads" in bugs
        self.ack_before_commit = "ack-before-commit" in bugs
        self.local_dedupe = "local-dedupe" in bugs
        self._local_results: dict[str, int] = {}  # local-dedupe: this process only
        self._local_lock = threading.Lock()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        f = request.get("f")
        if f == protocol.STATUS:
            answer: Answer = (OK, self.replica.status(), None)
        elif f not in protocol.DATA_OPS:
            answer = (FAIL, None, f"unknown-op: {f!r}")
        else:
            deadline = time.monotonic() + request_timeout(request.get("timeout"))
            try:
                answer = self._perform(str(f), request.get("key"), request.get("value"), deadline)
            except BadRequest as exc:
                answer = (FAIL, None, f"bad-request: {exc}")
        return response_for(request, answer, self.replica)

    def _perform(self, f: str, key: Any, value: Any, deadline: float) -> Answer:
        if f == "read":
            if self.stale_reads:
                return OK, self.replica.state.local_read(_key(key)), None
            return self._replicate(f, deadline, "read", _key(key))
        if f == "read-ledger":
            if self.stale_reads:
                return OK, self.replica.state.local_ledger(), None
            return self._replicate(f, deadline, "read_ledger")
        if f == "write":
            kind, _, error = self._write(f, deadline, "write", _key(key), value)
            return kind, value if kind == OK else None, error
        if f == "cas":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise BadRequest("cas value must be [from, to]")
            kind, matched, error = self._write(f, deadline, "cas", _key(key), value[0], value[1])
            if kind == OK and matched is False:
                return FAIL, None, CAS_MISMATCH
            return kind, list(value) if kind == OK else None, error
        if f == "append":
            if not isinstance(value, str):
                raise BadRequest("append value must be a string")
            kind, new_value, error = self._write(f, deadline, "append", _key(key), value)
            if kind == OK and new_value is None:
                return FAIL, None, NOT_A_STRING
            return kind, value if kind == OK else None, error
        return self._apply(f, value, deadline)

    def _write(self, f: str, deadline: float, method: str, *args: Any) -> Answer:
        """Replicate a write; with ack-before-commit, claim success as soon as it is queued."""
        if not self.ack_before_commit:
            return self._replicate(f, deadline, method, *args)
        try:
            self.replica.submit(method, *args)
        except Exception as exc:
            return INFO, None, f"submit: {exc}"
        assumed = {"write": None, "cas": True, "append": ""}[method]
        return OK, assumed, None

    def _apply(self, f: str, value: Any, deadline: float) -> Answer:
        if not isinstance(value, dict) or not isinstance(value.get("idempotency_key"), str):
            raise BadRequest("apply value must be {\"idempotency_key\": str, \"payload\": any}")
        idempotency_key = value["idempotency_key"]
        if not self.local_dedupe:
            return self._replicate(f, deadline, "apply", idempotency_key)
        with self._local_lock:
            if idempotency_key in self._local_results:
                return OK, self._local_results[idempotency_key], None
        answer = self._replicate(f, deadline, "append_ledger", idempotency_key)
        if answer[0] == OK:
            with self._local_lock:
                self._local_results.setdefault(idempotency_key, answer[1])
        return answer

    def _replicate(self, f: str, deadline: float, method: str, *args: Any) -> Answer:
        try:
            pending = self.replica.submit(method, *args)
        except Exception as exc:  # pysyncobj may have queued it before raising
            log.exception("submitting %s failed", method)
            return protocol.uncertain_type(f), None, f"submit: {exc}"
        return verdict(f, pending, deadline)


def response_for(request: dict[str, Any], answer: Answer, replica: Replica) -> dict[str, Any]:
    """The wire answer to `request`: type, value, error, and who answered and whom it takes for leader."""
    kind, value, error = answer
    response = {"id": request.get("id"), "type": kind, "value": value, "node": replica.name,
                "leader": replica.leader()}
    if error is not None:
        response["error"] = error
    return response


def verdict(f: str, pending: Pending, deadline: float) -> Answer:
    if not pending.wait(deadline - time.monotonic()):
        return protocol.uncertain_type(f), None, "timeout"
    if pending.error == FAIL_REASON.SUCCESS:
        return OK, pending.result, None
    reason = REASONS.get(pending.error, f"fail-reason-{pending.error}")
    if pending.error in CERTAIN_FAILURES:
        return FAIL, None, reason
    return protocol.uncertain_type(f), None, reason


def request_timeout(value: Any) -> float:
    try:
        seconds = float(value) if value is not None else DEFAULT_TIMEOUT
    except (TypeError, ValueError):
        seconds = DEFAULT_TIMEOUT
    return min(max(seconds, 0.01), MAX_TIMEOUT)


def _key(key: Any) -> str:
    if key is None or isinstance(key, (dict, list)):
        raise BadRequest(f"key must be a string, got {key!r}")
    return str(key)


class _Handler(socketserver.StreamRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        self.request.settimeout(IDLE_TIMEOUT)
        service = self.server.service
        while True:
            try:
                line = self.rfile.readline(protocol.MAX_LINE + 1)
            except OSError:
                return
            if not line:
                return
            try:
                request = protocol.decode(line)
            except ValueError as exc:
                response: dict[str, Any] = {"id": None, "type": FAIL, "error": f"bad-request: {exc}"}
            else:
                response = service.handle(request)
            try:
                self.wfile.write(protocol.encode(response))
            except OSError:
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128  # every worker may (re)connect at once

    def __init__(self, address: tuple[str, int], service: KVService) -> None:
        self.service = service
        super().__init__(address, _Handler)


class ClientServer:
    """The client port's TCP server, served from a background thread."""

    def __init__(self, host: str, port: int, service: KVService) -> None:
        self._server = _Server((host, port), service)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="client-port", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
