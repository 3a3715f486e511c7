"""One broker node: `python -m cluster.systems.broker.node --config '<NodePlan as JSON>'`.

The Raft side is raftkv's (replica, mesh transport, durable vote, client port and
wire format); only the replicated state and the request handling are the broker's.
Logs to stderr and stops cleanly on SIGTERM or SIGINT. Exit codes: 0 stopped,
3 bad config or a port that cannot be bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from types import FrameType

from pysyncobj import SyncObj

from cluster.systems.broker import BUGS
from cluster.systems.broker.queues import ReplicatedQueues
from cluster.systems.broker.service import BrokerService
from cluster.systems.raftkv.node import NodeConfig
from cluster.systems.raftkv.replica import Replica, ReplicaConfig
from cluster.systems.raftkv.server import ClientServer

log = logging.getLogger("broker.node")


class BrokerReplica(Replica):
    """raftkv's replica carrying the broker's queues instead of the key-value map."""

    def __init__(self, config: ReplicaConfig) -> None:
        self._queues = ReplicatedQueues()
        super().__init__(config)

    def _create(self) -> SyncObj:
        self.state = self._queues  # the consumer pysyncobj replicates (set before it is built)
        return super()._create()


def parse_config(text: str) -> NodeConfig:
    """The NodePlan JSON as raftkv's NodeConfig, with the broker's bugs; raises ValueError."""
    try:
        plan = json.loads(text)
        bugs = frozenset(plan.get("bugs") or ())
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"bad node config: {exc}") from exc
    unknown = bugs - set(BUGS)
    if unknown:
        raise ValueError(f"unknown bug(s): {', '.join(sorted(unknown))} (known: {', '.join(BUGS)})")
    config = NodeConfig.from_plan_json(json.dumps({**plan, "bugs": []}))
    return dataclasses.replace(config, bugs=bugs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cluster.systems.broker.node", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the NodePlan as JSON")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        config = parse_config(args.config)
        replica_config = config.replica_config()
    except ValueError as exc:
        print(f"broker node: {exc}", file=sys.stderr)
        return 3
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        replica = BrokerReplica(replica_config)
    except Exception as exc:  # pysyncobj raises SyncObjException('BindError') for a taken port
        log.error("cannot start raft on %s:%d: %s", config.listen_host, config.raft_port, exc)
        return 3
    try:
        server = ClientServer(config.listen_host, config.client_port,
                              BrokerService(replica, config.bugs))  # type: ignore[arg-type]
    except OSError as exc:
        log.error("cannot listen on client port %s:%d: %s", config.listen_host, config.client_port, exc)
        replica.close()
        return 3
    replica.start()
    server.start()
    log.info("started: raft %s:%d, client %s:%d, peers %s, bugs %s", config.listen_host, config.raft_port,
             config.listen_host, config.client_port, config.dial, sorted(config.bugs) or "none")
    while not stop.wait(1.0):
        pass
    server.close()
    replica.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
