#!/usr/bin/env python3
"""A Maelstrom g-counter / pn-counter node: a PN-counter CRDT, each add acknowledged once a majority holds it.

The counter is a map from "node:incarnation" to the (increments, decrements) that incarnation made; merging
takes the maximum of each, so gossip may repeat, reorder or lose messages. A node loses its memory when it
is killed, so each start is a new incarnation with its own entry (an old entry comes back from the peers).
An add is acknowledged only when a majority of nodes (this one included) have confirmed holding it, so no
minority of kills can lose an acknowledged add; if that takes too long the client gets a timeout error
(indefinite: the add may still spread). A read sums the entries this node knows.

Planted bug: `--double-count-retries` retries an add whose replication timed out by adding the delta
again, although the first attempt is still in the counter: a retried add is counted twice (or more).
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass

from maelstrom_node import TIMEOUT, Message, Node

GOSSIP_SECONDS = 0.1
REPLICATION_SECONDS = 0.9   # then the client hears "timeout" (indefinite)
RETRY_SECONDS = 0.3         # the buggy node retries this often
RETRIES = 2


@dataclass
class PendingAdd:
    request: Message
    delta: int
    target: tuple[int, int]   # this incarnation's (increments, decrements) once the add is in
    started: float
    retried: int = 0


class Counter:
    def __init__(self, node: Node, double_count_retries: bool) -> None:
        self.node = node
        self.double_count_retries = double_count_retries
        self.incarnation = f"{random.getrandbits(48):012x}"
        self.entries: dict[str, list[int]] = {}
        self.confirmed: dict[str, tuple[int, int]] = {}  # peer -> what it holds of our entry
        self.pending: list[PendingAdd] = []
        node.handle("add", self.add)
        node.handle("read", lambda m: node.reply(m, {"type": "read_ok", "value": self.value()}))
        node.handle("merge", self.merge)
        node.handle("merge_ok", self.merge_ok)
        node.every(GOSSIP_SECONDS, self.tick, jitter=0.03)

    @property
    def key(self) -> str:
        return f"{self.node.node_id}:{self.incarnation}"

    def value(self) -> int:
        return sum(p - n for p, n in self.entries.values())

    def apply(self, delta: int) -> tuple[int, int]:
        own = self.entries.setdefault(self.key, [0, 0])
        if delta >= 0:
            own[0] += delta
        else:
            own[1] -= delta
        return own[0], own[1]

    def add(self, message: Message) -> None:
        delta = message["body"]["delta"]
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise ValueError(f"delta must be an integer, not {delta!r}")
        self.pending.append(PendingAdd(message, delta, self.apply(delta), time.monotonic()))
        self.settle()

    def merge_state(self, state: dict[str, list[int]]) -> None:
        for key, (p, n) in state.items():
            own = self.entries.setdefault(key, [0, 0])
            own[0], own[1] = max(own[0], int(p)), max(own[1], int(n))

    def merge(self, message: Message) -> None:
        self.merge_state(message["body"]["entries"])
        self.node.send(message["src"], {"type": "merge_ok", "entries": self.entries})

    def merge_ok(self, message: Message) -> None:
        entries = message["body"]["entries"]
        self.merge_state(entries)
        p, n = entries.get(self.key, (0, 0))
        self.confirmed[message["src"]] = (int(p), int(n))
        self.settle()

    def holders(self, target: tuple[int, int]) -> int:
        return 1 + sum(1 for p, n in self.confirmed.values() if p >= target[0] and n >= target[1])

    def settle(self) -> None:
        """Acknowledge the adds a majority holds; time out (or, with the bug, re-add) the others."""
        now, still = time.monotonic(), []
        for add in self.pending:
            if self.holders(add.target) >= self.node.majority():
                self.node.reply(add.request, {"type": "add_ok"})
            elif self.retry_due(add, now):
                add.retried += 1
                add.target = self.apply(add.delta)  # the bug: the first attempt is still counted
                still.append(add)
            elif now - add.started > REPLICATION_SECONDS:
                self.node.error(add.request, TIMEOUT, "add not replicated to a majority in time")
            else:
                still.append(add)
        self.pending = still

    def retry_due(self, add: PendingAdd, now: float) -> bool:
        """With the bug: time to retry an add not yet replicated."""
        return (self.double_count_retries and add.retried < RETRIES
                and now - add.started > RETRY_SECONDS * (add.retried + 1))

    def tick(self) -> None:
        for peer in self.node.peers:
            self.node.send(peer, {"type": "merge", "entries": self.entries})
        self.settle()


def main() -> None:
    node = Node()
    Counter(node, double_count_retries="--double-count-retries" in sys.argv[1:])
    node.run()


if __name__ == "__main__":
    main()
