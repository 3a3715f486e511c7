"""rabbitmq: Debian's rabbitmq-server (3.10) with quorum queues, one container per node.

    node.py     the launcher: cookie + rabbitmq.conf in the data dir, then exec rabbitmq-server
    client.py   the Client: AMQP 0-9-1 through pika, publisher confirms, basic.get + manual ack

`--option queue-type=classic-mirrored` runs the setup Jepsen tested in 2014 instead: durable
classic queues mirrored by the policy ha-mode exactly 3 with automatic sync, and
pause_minority (quorum queues, the default, are the control; see node.py).

Cluster formation is classic_config peer discovery (every node lists rabbit@n1..nN);
partitions are handled with autoheal (see node.py). Erlang distribution (epmd and the fixed
distribution port) is routed through the mesh; AMQP is the client port. Like etcd,
RabbitMQ dials its peers by name, so it runs on the docker backend only.

Operator CLI commands run inside a node container need HOME=<data dir> (the cookie)
and ERL_EPMD_PORT; those that gather answers from every node (list_queues) time out,
because the CLI's own Erlang node listens on a port outside the mesh, while
cluster_status and rabbitmq-queues quorum_status work.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Mapping

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems import AT_LEAST_ONCE, SystemOption, SystemTraits
from faultbed.errors import FaultbedError

if TYPE_CHECKING:  # pika is on the harness only, not in the node image that runs node.py
    from faultbed.cluster.systems.rabbitmq.client import RabbitMQClient

EPMD, DIST, AMQP = "epmd", "dist", "amqp"
QUORUM, CLASSIC_MIRRORED = "quorum", "classic-mirrored"
QUEUE_TYPE = SystemOption("queue-type", (QUORUM, CLASSIC_MIRRORED),
                          "classic-mirrored: durable classic queues, policy ha-mode exactly 3 with "
                          "automatic sync, pause_minority (Jepsen 2014)")


def require_named_peers(plan: NodePlan) -> None:
    """Raise FaultbedError unless every peer is reached by its own name on the same ports.

    RabbitMQ (like any unmodified third-party system) dials the peers it was given by name;
    only a backend that resolves peers' names to the mesh (docker) keeps its traffic in the mesh.
    """
    for peer, ports in plan.dial.items():
        for port, address in ports.items():
            if address != f"{peer}:{plan.ports[port]}":
                raise FaultbedError(f"{plan.name} would dial {peer} at {address}, not by its name: "
                                    "third-party systems run on the docker backend only (--backend docker)")
BUGS: Mapping[str, str] = {}


class RabbitMQSystem:
    """The System the runner and backends see."""

    name = "rabbitmq"
    description = "RabbitMQ quorum queues (Debian's rabbitmq-server), pika client with confirms"
    ports: tuple[str, ...] = (EPMD, DIST, AMQP)
    peer_ports: tuple[str, ...] = (EPMD, DIST)
    client_port = AMQP
    bugs = BUGS
    workloads: tuple[str, ...] = ("queue",)
    # docker only: peers dial each other by name. Three Erlang VMs booting on two shared cores
    # form a cluster in ~15 s here, five in ~30 s; on a machine loaded by other work (load 30)
    # five took over 90 s: readiness waits up to 180 s. RabbitMQ does
    # not deduplicate publishes: a publish retried after a lost confirm may be enqueued twice. That
    # is its documented guarantee, so the queue check lists duplicates without calling them a
    # violation (lost, unexpected and reordered messages still are).
    traits = SystemTraits(backends=("docker",), ready_timeout=180.0, delivery=AT_LEAST_ONCE, options=(QUEUE_TYPE,))

    def command(self, plan: NodePlan) -> list[str]:
        require_named_peers(plan)
        config = json.dumps(asdict(plan), separators=(",", ":"), sort_keys=True)
        return [plan.python, "-m", "faultbed.cluster.systems.rabbitmq.node", "--config", config]

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = (), options: Mapping[str, str] | None = None) -> "RabbitMQClient":
        from faultbed.cluster.systems.rabbitmq.client import RabbitMQClient

        return RabbitMQClient(address, node, timeout, queue_type(options or {}))


def queue_type(options: Mapping[str, str]) -> str:
    """The queue type chosen among `options` ({name: value}, as open_client gets them)."""
    return options.get(QUEUE_TYPE.name, QUEUE_TYPE.default)


SYSTEM = RabbitMQSystem()
