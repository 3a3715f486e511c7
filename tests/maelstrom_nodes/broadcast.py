#!/usr/bin/env python3
"""A Maelstrom broadcast node: gossip to every other node, retransmitted until acknowledged.

Each node keeps the set of values it has seen and, per peer, the values that peer has confirmed. Every
tick it sends each peer what the peer has not confirmed; the peer answers with what it took. A client's
broadcast is acknowledged once a majority of nodes (this one included) hold the value, so that killing a
node (which loses its memory) never loses an acknowledged value; if that takes too long the client gets a
timeout error (indefinite: the value may still spread). A node that
restarts has lost its memory, so every node has an incarnation (random at start) carried in every gossip
and answer: a peer whose incarnation changed has confirmed nothing yet. The topology is answered but not
used: every node gossips with every other, so no node is a single point through which values must pass.

Planted bug: `--no-retransmit` sends each new value to each peer once and never again (a lost message is a
lost value on that peer; a restarted peer never gets the values it lost). Acknowledgements are as above.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from maelstrom_node import TIMEOUT, Message, Node

GOSSIP_SECONDS = 0.15
HEARTBEAT_TICKS = 6   # with nothing to send, still exchange incarnations every ~1 s
MAX_BATCH = 1000
REPLICATION_SECONDS = 0.9   # then the client hears "timeout" (indefinite)


class Broadcast:
    def __init__(self, node: Node, retransmit: bool) -> None:
        self.node = node
        self.retransmit = retransmit
        self.incarnation = f"{random.getrandbits(64):016x}"
        self.messages: set[Any] = set()
        self.confirmed: dict[str, set[Any]] = {}   # peer -> values it has confirmed
        self.incarnations: dict[str, str] = {}     # peer -> its incarnation when it confirmed them
        self.ticks = 0
        self.pending: list[tuple[Message, Any, float]] = []  # client broadcasts awaiting a majority
        node.handle("topology", lambda m: node.reply(m, {"type": "topology_ok"}))
        node.handle("broadcast", self.broadcast)
        node.handle("read", lambda m: node.reply(m, {"type": "read_ok", "messages": sorted(self.messages)}))
        node.handle("gossip", self.gossip)
        node.handle("gossip_ok", self.gossip_ok)
        node.every(GOSSIP_SECONDS, self.tick if retransmit else self.settle, jitter=0.05)

    def broadcast(self, message: Message) -> None:
        value = message["body"]["message"]
        self.messages.add(value)
        self.pending.append((message, value, time.monotonic()))
        for peer in self.node.peers:  # at once, not at the next tick: the client is waiting
            if value not in self.confirmed.get(peer, set()):
                self.send_gossip(peer, [value])
        self.settle()

    def settle(self) -> None:
        """Acknowledge the broadcasts a majority holds; time out those that took too long."""
        now, still = time.monotonic(), []
        for message, value, started in self.pending:
            holders = 1 + sum(1 for peer in self.node.peers if value in self.confirmed.get(peer, set()))
            if holders >= self.node.majority():
                self.node.reply(message, {"type": "broadcast_ok"})
            elif now - started > REPLICATION_SECONDS:
                self.node.error(message, TIMEOUT, "not replicated to a majority in time")
            else:
                still.append((message, value, started))
        self.pending = still

    def send_gossip(self, peer: str, values: list[Any]) -> None:
        self.node.send(peer, {"type": "gossip", "messages": values, "incarnation": self.incarnation})

    def tick(self) -> None:
        self.ticks += 1
        self.settle()
        for peer in self.node.peers:
            pending = list(self.messages - self.confirmed.get(peer, set()))[:MAX_BATCH]
            if pending or self.ticks % HEARTBEAT_TICKS == 0:
                self.send_gossip(peer, pending)

    def learn_incarnation(self, peer: str, incarnation: Any) -> None:
        if self.incarnations.get(peer) != incarnation:  # a new peer, or one that restarted empty
            self.incarnations[peer] = incarnation
            self.confirmed[peer] = set()

    def gossip(self, message: Message) -> None:
        body, peer = message["body"], message["src"]
        values = body["messages"]
        self.messages.update(values)
        self.learn_incarnation(peer, body.get("incarnation"))
        self.node.send(peer, {"type": "gossip_ok", "messages": values, "incarnation": self.incarnation})

    def gossip_ok(self, message: Message) -> None:
        body, peer = message["body"], message["src"]
        self.learn_incarnation(peer, body.get("incarnation"))
        self.confirmed.setdefault(peer, set()).update(body["messages"])
        self.settle()


def main() -> None:
    node = Node()
    Broadcast(node, retransmit="--no-retransmit" not in sys.argv[1:])
    node.run()


if __name__ == "__main__":
    main()
