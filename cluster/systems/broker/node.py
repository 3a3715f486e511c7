"""One broker node: `python -m faultbed.cluster.systems.broker.node --config '<NodePlan as JSON>'`.

The Raft side is raftkv's (replica, mesh transport, durable vote, client port and
wire format, node main loop); only the replicated state and the request handling
are the broker's. Exit codes: 0 stopped, 3 bad config or a port that cannot be bound.
"""

from __future__ import annotations

import sys

from faultbed.cluster.systems.broker import BUGS
from faultbed.cluster.systems.broker.queues import ReplicatedQueues
from faultbed.cluster.systems.broker.service import BrokerService
from faultbed.cluster.systems.raftkv.node import NodeConfig, run_node
from faultbed.cluster.systems.raftkv.replica import Replica, ReplicaConfig


def parse_config(text: str) -> NodeConfig:
    """The NodePlan JSON as raftkv's NodeConfig, with the broker's bugs; raises ValueError."""
    return NodeConfig.from_plan_json(text, known_bugs=tuple(BUGS))


def broker_replica(config: ReplicaConfig) -> Replica:
    """raftkv's replica carrying the broker's queues instead of the key-value map."""
    return Replica(config, state=ReplicatedQueues())


def main(argv: list[str] | None = None) -> int:
    return run_node("broker", argv, parse_config, broker_replica, BrokerService)


if __name__ == "__main__":
    sys.exit(main())
