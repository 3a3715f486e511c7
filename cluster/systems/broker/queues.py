"""The broker's replicated state: named FIFO queues of leased messages.

Every change is a command applied in log order on every replica, so the state is
a pure function of the log. Time is part of the command too: each command carries
`now`, the proposing node's clock, and the state keeps the largest `now` seen as
its logical clock; a lease expires when that clock passes its deadline. No replica
ever reads its own clock while applying, so expiry is the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pysyncobj import SyncObjConsumer, replicated

DEFAULT_LEASE_SECONDS = 2.0


class CommandError(Exception):
    """A command that certainly did not take effect (unknown queue op, no such lease)."""


@dataclass
class Message:
    seq: int
    msg_id: str
    body: Any
    lease: int | None = None
    deadline: float = 0.0
    deliveries: int = 0


@dataclass
class Queue:
    """One queue: messages in publish order, and every msg_id ever published (for dedupe)."""

    messages: dict[int, Message] = field(default_factory=dict)  # seq -> message, in seq order
    published: dict[str, int] = field(default_factory=dict)     # msg_id -> seq of its first publish


class BrokerState:
    """All queues; `apply(command)` is the only way to change them."""

    def __init__(self) -> None:
        self.queues: dict[str, Queue] = {}
        self.clock = 0.0
        self.next_seq = 1
        self.next_lease = 1

    def apply(self, command: dict[str, Any]) -> Any:
        """Apply one logged command; returns its result or raises CommandError."""
        self.clock = max(self.clock, float(command.get("now", 0.0)))
        handler = {"publish": self._publish, "consume": self._consume, "ack": self._ack,
                   "depth": self._depth}.get(command.get("f", ""))
        if handler is None:
            raise CommandError(f"unknown command {command.get('f')!r}")
        return handler(command)

    def queue(self, name: str) -> Queue:
        return self.queues.setdefault(name, Queue())

    def _publish(self, command: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(command["queue"])
        msg_id = str(command["msg_id"])
        if command.get("dedupe", True) and msg_id in queue.published:
            return {"msg_id": msg_id, "seq": queue.published[msg_id], "duplicate": True}
        seq = self.next_seq
        queue.published.setdefault(msg_id, seq)
        self.next_seq += 1
        queue.messages[seq] = Message(seq, msg_id, command.get("body"))
        return {"msg_id": msg_id, "seq": seq, "duplicate": False}

    def _consume(self, command: dict[str, Any]) -> dict[str, Any] | None:
        """Lease the oldest ready message (one whose lease, if any, has expired)."""
        queue = self.queue(command["queue"])
        for message in queue.messages.values():
            if message.lease is None or message.deadline <= self.clock:
                message.lease = self.next_lease
                self.next_lease += 1
                message.deadline = self.clock + float(command.get("lease_seconds", DEFAULT_LEASE_SECONDS))
                message.deliveries += 1
                return {"msg_id": message.msg_id, "body": message.body, "lease": message.lease,
                        "deadline": message.deadline, "deliveries": message.deliveries}
        return None

    def _ack(self, command: dict[str, Any]) -> dict[str, Any]:
        """Remove a message leased to the caller (lease given) or to anyone (no lease given)."""
        queue = self.queue(command["queue"])
        msg_id, lease = str(command["msg_id"]), command.get("lease")
        leased = [m for m in queue.messages.values()
                  if m.msg_id == msg_id and m.lease is not None and (lease is None or m.lease == lease)]
        if not leased:
            raise CommandError(f"{msg_id} is not leased" + (f" under lease {lease}" if lease is not None else ""))
        current = [m for m in leased if m.deadline > self.clock]
        if not current:
            raise CommandError(f"lease of {msg_id} expired")
        del queue.messages[current[0].seq]
        return {"msg_id": msg_id, "acked": True}

    def _depth(self, command: dict[str, Any]) -> dict[str, int]:
        queue = self.queue(command["queue"])
        leased = sum(1 for m in queue.messages.values() if m.lease is not None and m.deadline > self.clock)
        return {"ready": len(queue.messages) - leased, "leased": leased}


class ReplicatedQueues(SyncObjConsumer):  # type: ignore[misc]
    """The broker state as pysyncobj replicates and snapshots it: one logged command type.

    A replicated method must never raise (pysyncobj would retry the entry on every
    tick), so a refused command is answered with {"error": reason} instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.broker = BrokerState()

    @replicated
    def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"result": self.broker.apply(command)}
        except CommandError as exc:
            return {"error": str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            return {"error": f"bad command: {type(exc).__name__}: {exc}"}
