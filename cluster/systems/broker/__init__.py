"""broker: a Raft-replicated message broker on pysyncobj, one OS process per node.

Named queues of messages with ids. `publish` answers after commit and ignores a
msg_id the queue has already seen; `consume` leases the oldest ready message for a
while; `ack` removes a leased message; a message whose lease expires before its ack
is handed out again. Lease expiry is decided by a clock carried in the log, so every
replica agrees on it.

    queues.py   the replicated state: queues, leases, dedupe, logical clock
    service.py  the client port's operations -> logged commands; the bug switches
    node.py     the node process, built from raftkv's replica, mesh transport and server

The client is raftkv's (same newline-delimited JSON protocol, `key` = queue name).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Mapping

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems import SystemTraits
from faultbed.cluster.systems.raftkv import RAFT_BUGS
from faultbed.cluster.systems.raftkv.client import RaftKVClient

BUGS: Mapping[str, str] = {
    "ack-before-replicate": "the leader answers publish ok as soon as it has queued the entry, "
                            "before any follower has it: a leader change loses acknowledged messages",
    "no-dedupe": "publish ignores msg_ids already seen: a retried publish is stored (and delivered) twice",
    **RAFT_BUGS,  # the Raft transport is raftkv's
}


class BrokerSystem:
    """The System the runner and backends see."""

    name = "broker"
    description = "Raft-replicated message broker on pysyncobj (faultbed's own)"
    ports: tuple[str, ...] = ("raft", "client")
    peer_ports: tuple[str, ...] = ("raft",)
    client_port = "client"
    bugs = BUGS
    workloads: tuple[str, ...] = ("queue",)
    traits = SystemTraits(raft_trace="raft.trace.jsonl")  # raftkv's replica writes it

    def command(self, plan: NodePlan) -> list[str]:
        config = json.dumps(asdict(plan), separators=(",", ":"), sort_keys=True)
        return [plan.python, "-m", "faultbed.cluster.systems.broker.node", "--config", config]

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = ()) -> RaftKVClient:
        return RaftKVClient(address, node, timeout)


SYSTEM = BrokerSystem()
