"""Two clusters under different faults at the same time, side by side, without interference.

Cluster A has its leader cut off by a partition while cluster B has a follower
killed. Each cluster reacts only to its own fault: ports, results directories and
proxies are disjoint, A's partition never shows up in B's mesh, B's kill never
touches A's processes, and after healing every node of each cluster reads its own
cluster's value, never the other's.
"""

from __future__ import annotations

import os
import time

import pytest

from faultbed.cluster.backend import DEAD, RUNNING
from faultbed import store
from faultbed.pytest_plugin import running_cluster
from faultbed.spec import TestSpec

pytestmark = pytest.mark.integration


def used_ports(cluster) -> set[int]:
    backend = cluster.backend
    ports = {port for node in cluster.nodes for port in backend.plan(node).ports.values()}
    ports |= {int(link.listen.rsplit(":", 1)[1]) for link in cluster.mesh.links}
    return ports


def isolate(node: str, nodes: list[str]) -> dict[str, list[str]]:
    others = [n for n in nodes if n != node]
    return {node: others, **{n: [node] for n in others}}


def invoke(cluster, node: str, f: str, key: str, value=None, timeout: float = 1.0):
    client = cluster.client(node, timeout)
    try:
        return client.invoke(f, key, value, timeout)
    finally:
        client.close()


def write_until_ok(cluster, key: str, value: int, deadline: float) -> str:
    """Write through whichever node takes it first; the node that did."""
    while time.monotonic() < deadline:
        for node in cluster.nodes:
            if cluster.backend.state(node) == RUNNING and invoke(cluster, node, "write", key, value).type == "ok":
                return node
        time.sleep(0.2)
    raise AssertionError(f"no node of the cluster accepted write {key}={value}")


def test_two_clusters_under_different_faults_do_not_interfere(tmp_path):
    spec_a = TestSpec(system="raftkv", nodes=3, store=str(tmp_path / "a"), seed=1)
    spec_b = TestSpec(system="raftkv", nodes=3, store=str(tmp_path / "b"), seed=2)
    dir_a, dir_b = store.create_run_dir(spec_a), store.create_run_dir(spec_b)
    with running_cluster(spec_a, dir_a) as a, running_cluster(spec_b, dir_b) as b:
        assert used_ports(a).isdisjoint(used_ports(b))
        assert a.mesh.client.api != b.mesh.client.api  # a Toxiproxy server each
        for cluster in (a, b):  # the same proxy names, each forwarding only to its own cluster's nodes
            upstreams = {int(p.upstream.rsplit(":", 1)[1]) for p in cluster.mesh.client.proxies().values()}
            assert upstreams <= used_ports(cluster)
        leader_a, leader_b = a.leader(), b.leader()
        follower_b = next(n for n in b.nodes if n != leader_b)

        a.mesh.partition(isolate(leader_a, a.nodes))
        b.backend.kill(follower_b)
        deadline = time.monotonic() + 20
        # A's majority side elects a new leader and takes writes; the isolated old leader cannot commit one
        write_until_ok(a, "k0", 111, deadline)
        assert invoke(a, leader_a, "write", "k1", 1, timeout=1.5).type in ("fail", "info")
        # B, with two of three nodes, keeps taking writes through its leader
        assert write_until_ok(b, "k0", 222, deadline) != follower_b
        # neither fault leaks into the other cluster
        assert b.mesh.partitions() == {} and b.mesh.is_healed()
        assert [a.backend.state(n) for n in a.nodes] == [RUNNING] * 3
        assert b.backend.state(follower_b) == DEAD

        a.mesh.heal()
        b.backend.restart(follower_b)
        a.wait_ready(30)
        b.wait_ready(30)
        assert_every_node_reads(a, "k0", 111)
        assert_every_node_reads(b, "k0", 222)
        for cluster, own in ((a, dir_a), (b, dir_b)):  # each cluster keeps its data and logs in its own run
            for node in cluster.nodes:
                assert os.path.commonpath([cluster.backend.plan(node).data_dir, own]) == own
                assert os.path.getsize(cluster.backend.log_path(node)) > 0
                assert os.path.commonpath([cluster.backend.log_path(node), own]) == own


def assert_every_node_reads(cluster, key: str, expected: int, timeout: float = 15.0) -> None:
    """Reads through every node settle on `expected` (a restarted node catches up from the log)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, object] = {}
    while time.monotonic() < deadline:
        seen = {}
        for node in cluster.nodes:
            outcome = invoke(cluster, node, "read", key)
            seen[node] = outcome.value if outcome.type == "ok" else outcome.type
        if all(value == expected for value in seen.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"expected every node to read {key}={expected}, got {seen}")
