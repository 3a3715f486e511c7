"""etcd: Debian's etcd-server (3.4), a real Raft key-value store, one container per node.

The node command is etcd itself with a plain, identical configuration on every
node: peers are addressed by their names (`http://n2:<peer port>`), which the
Docker backend resolves to the mesh's proxies, so every byte between members
crosses Toxiproxy. A backend that cannot give peers' names that meaning (the
local backend dials proxies at other addresses than the identities) cannot run
etcd: `backends` says so, and `command` refuses such a plan.

Clients use etcd's v3 JSON gateway on the client port (see client.py): read is a
range (linearizable unless the `serializable-reads` bug is on), write a put, cas a
transaction comparing the value.
"""

from __future__ import annotations

import os
from typing import Mapping

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems import SystemTraits
from faultbed.cluster.systems.etcd.client import EtcdClient
from faultbed.errors import FaultbedError

ETCD = "/usr/bin/etcd"
PEER, CLIENT = "peer", "client"
# Short enough that a partitioned leader is replaced within a couple of seconds, long
# enough for two shared cores: etcd's defaults are 100 ms and 1000 ms.
HEARTBEAT_MS = 100
ELECTION_MS = 750
SERIALIZABLE_READS = "serializable-reads"

BUGS: Mapping[str, str] = {
    SERIALIZABLE_READS: "the client reads with serializable=true: any member answers from its local "
                        "state without a quorum, so a partitioned or lagging member returns stale values",
}


def require_named_peers(plan: NodePlan) -> None:
    """Raise FaultbedError unless every peer is reached by its own name on the same ports.

    etcd (like any unmodified third-party system) dials the peer URLs it was given;
    only a backend that resolves peers' names to the mesh (docker) keeps its traffic
    in the mesh.
    """
    for peer, ports in plan.dial.items():
        for port, address in ports.items():
            if address != f"{peer}:{plan.ports[port]}":
                raise FaultbedError(f"{plan.name} would dial {peer} at {address}, not by its name: "
                                    "third-party systems run on the docker backend only (--backend docker)")


class EtcdSystem:
    """The System the runner and backends see."""

    name = "etcd"
    description = "etcd (Debian's etcd-server 3.4): Raft KV store, v3 JSON gateway client"
    ports: tuple[str, ...] = (PEER, CLIENT)
    peer_ports: tuple[str, ...] = (PEER,)
    client_port = CLIENT
    bugs = BUGS
    workloads: tuple[str, ...] = ("register",)
    traits = SystemTraits(backends=("docker",))

    def command(self, plan: NodePlan) -> list[str]:
        require_named_peers(plan)
        peer, client = plan.ports[PEER], plan.ports[CLIENT]
        cluster = ",".join(f"{node}=http://{node}:{peer}" for node in plan.nodes)
        return [
            ETCD,
            "--name", plan.name,
            "--data-dir", os.path.join(plan.data_dir, "etcd"),  # etcd creates it 0700
            "--listen-peer-urls", f"http://{plan.listen_host}:{peer}",
            "--initial-advertise-peer-urls", f"http://{plan.name}:{peer}",
            "--listen-client-urls", f"http://{plan.listen_host}:{client}",
            "--advertise-client-urls", f"http://{plan.name}:{client}",
            "--initial-cluster", cluster,
            "--initial-cluster-state", "new",  # ignored on a restart: the data dir knows the cluster
            "--initial-cluster-token", "faultbed",
            "--heartbeat-interval", str(HEARTBEAT_MS),
            "--election-timeout", str(ELECTION_MS),
            "--pre-vote=true",  # etcd 3.5's default: an isolated member does not disrupt on return
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = ()) -> EtcdClient:
        """The serializable-reads switch lives here, in the client: the node is the same either way."""
        return EtcdClient(address, node, timeout, serializable=SERIALIZABLE_READS in bugs)


SYSTEM = EtcdSystem()
