"""Inside the Docker backend, nodes reach each other only through Toxiproxy, by name."""

from __future__ import annotations

import time

import pytest

from docker.client import DockerClient

from faultbed.cluster.docker import DockerBackend
from tests.docker.conftest import dial_from

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("whoami3-isolation")]  # one whoami3 per module

PEER_PORT = 7000


def proxy_name(backend: DockerBackend, src: str, dst: str) -> str:
    (link,) = backend.mesh.links_between(src, dst)
    return link.name


def test_a_peer_name_reaches_the_peer_through_its_proxy_address(whoami3):
    assert dial_from(whoami3, "n1", "n2", PEER_PORT) == "n2"
    assert dial_from(whoami3, "n1", "n3", PEER_PORT) == "n3"
    hosts = whoami3.container("n1").exec_run(["getent", "hosts", "n2"]).output.decode().split()
    (link,) = whoami3.mesh.links_between("n1", "n2")
    assert hosts[0] == whoami3.peer_address("n1", "n2") == link.listen.split(":")[0], hosts


def dial_foreign(backend: DockerBackend, node: str, address: str, reached: str) -> list[str]:
    """Dial an address on another node's network from `node`; a dial that gets through is tried again,
    twice, half a second apart. Docker 20.10 re-inserts its FORWARD jump to the chains that isolate
    bridges from one another whenever any network is created (libnetwork's EnsureJumpRule runs
    `iptables -D`, then `-I`), and a parallel test's run creates networks: a dial in that instant passes.
    A network shared or routed by faultbed's design would answer every time."""
    answers = [dial_from(backend, node, address, PEER_PORT)]
    while answers[-1] == reached and len(answers) < 3:
        time.sleep(0.5)
        answers.append(dial_from(backend, node, address, PEER_PORT))
    return answers


def test_a_peers_real_address_is_unreachable_from_a_node(whoami3):
    real = whoami3.node_address("n2")
    answers = dial_foreign(whoami3, "n1", real, "n2")
    assert answers[-1] != "n2", f"n1 reached n2 directly at {real}: {answers}"
    assert answers[-1] in ("TimeoutError", "ConnectionRefusedError", "OSError"), answers


def test_toxiproxy_addresses_on_other_networks_are_unreachable_from_a_node(whoami3):
    # n2's proxy towards n3 lives on n2's network: n1 must not borrow it
    elsewhere = whoami3.peer_address("n2", "n3")
    answers = dial_foreign(whoami3, "n1", elsewhere, "n3")
    assert answers[-1] != "n3", answers


def test_disabling_the_proxy_makes_the_peer_disappear_and_enabling_brings_it_back(whoami3):
    proxy = proxy_name(whoami3, "n1", "n2")
    whoami3.mesh.client.disable_proxy(proxy)
    try:
        assert dial_from(whoami3, "n1", "n2", PEER_PORT) != "n2"
        assert dial_from(whoami3, "n1", "n3", PEER_PORT) == "n3", "only the n1->n2 link is cut"
        assert dial_from(whoami3, "n3", "n2", PEER_PORT) == "n2", "only the n1->n2 link is cut"
    finally:
        whoami3.mesh.client.enable_proxy(proxy)
    assert dial_from(whoami3, "n1", "n2", PEER_PORT) == "n2"


def test_only_client_ports_and_the_toxiproxy_api_are_published_and_only_on_loopback(whoami3):
    client_port = whoami3.ports[whoami3.system.client_port]
    for node in whoami3.node_names():
        container = whoami3.container(node)
        container.reload()
        published = container.attrs["NetworkSettings"]["Ports"]
        bindings = {port: hosts for port, hosts in published.items() if hosts}
        assert list(bindings) == [f"{client_port}/tcp"], bindings
        assert [b["HostIp"] for b in bindings[f"{client_port}/tcp"]] == ["127.0.0.1"]
        assert whoami3.client_address(node) == ("127.0.0.1", int(bindings[f"{client_port}/tcp"][0]["HostPort"]))
    api = whoami3.mesh.client.api
    assert api.startswith("http://127.0.0.1:"), api


def test_each_node_has_a_network_of_its_own(whoami3):
    for node in whoami3.node_names():
        container = whoami3.container(node)
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        assert list(networks) == [f"faultbed-{whoami3.run_id}-{node}"], networks


def test_a_toxiproxy_container_that_stops_answering_is_restarted_with_every_proxy_as_recorded(whoami3):
    """`docker pause` freezes the Toxiproxy container, so its API hangs as a wedged server's does."""
    events: list[str] = []

    def listener(f: str, value: str, details: dict) -> None:
        events.append(f)

    client = DockerClient.from_env(timeout=60)
    whoami3.mesh.add_listener(listener)
    try:
        client.containers.get(f"faultbed-{whoami3.run_id}-toxiproxy").pause()
        whoami3.mesh.partition({"n2": ["n1"], "n1": ["n2"]})  # no answer: recreate fails too: restart
        assert events == ["toxiproxy-restarted"], events
        assert dial_from(whoami3, "n1", "n2", PEER_PORT) != "n2", "the partition holds on the new server"
        assert dial_from(whoami3, "n1", "n3", PEER_PORT) == "n3", "names route through the new server"
        whoami3.mesh.heal()
        assert dial_from(whoami3, "n1", "n2", PEER_PORT) == "n2"
    finally:
        whoami3.mesh.remove_listener(listener)
        container = client.containers.get(f"faultbed-{whoami3.run_id}-toxiproxy")
        if container.status == "paused":
            container.unpause()
        client.close()
