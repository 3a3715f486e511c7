"""The mesh on a real Toxiproxy, with real TCP echo servers as nodes (threads in the test).

Node `a` dials node `b` through proxy a->b; the echo node records what it
receives and echoes it, and can broadcast, so each direction is seen on its own.
"""

from __future__ import annotations

import time

import pytest

from faultbed.cluster.toxiproxy import ToxiproxyServer
from faultbed.errors import FaultbedError
from tests.nemesis.echo_cluster import EchoMesh, echo_mesh, wait_until

HOST = "127.0.0.1"
QUIET = 0.3  # how long "nothing arrives" is watched for



def assert_round_trip(net: EchoMesh, src: str, dst: str, payload: bytes) -> None:
    conn = net.connect(src, dst)
    try:
        conn.send(payload)
        assert conn.receive(len(payload), 2.0) == payload, f"{src}->{dst} should carry bytes both ways"
    finally:
        conn.close()


def test_blackhole_partition_carries_no_byte_across_the_cut_until_healed(net: EchoMesh) -> None:
    pairs = [(a, b) for a in net.nodes for b in net.nodes if a != b]
    conns = {pair: net.connect(*pair) for pair in pairs}
    for (a, b), conn in conns.items():
        hello = f"hello {a}{b};".encode()
        conn.send(hello)
        assert conn.receive(len(hello), 2.0) == hello

    net.mesh.partition({"n1": {"n2", "n3"}, "n2": {"n1"}, "n3": {"n1"}})  # n1 isolated
    cut = {pair for pair in pairs if "n1" in pair}
    for (a, b), conn in conns.items():
        conn.send(f"during {a}{b};".encode())
    for node in ("n2", "n3"):
        net.nodes[node].broadcast(b"push;")  # downstream of a->node
    time.sleep(QUIET)
    for (a, b), conn in conns.items():
        marker = f"during {a}{b};".encode()
        got = conn.receive(64, 0.05) if (a, b) in cut else conn.receive(len(marker) + len(b"push;"), 2.0)
        if (a, b) in cut:
            assert got == b"", f"{a}->{b} carried {got!r} during the partition"
            assert marker not in net.nodes[b].received(), f"{b} received {a}'s bytes across the cut"
        else:
            assert marker in got, f"{a}->{b} is not cut and should echo"

    net.mesh.heal()
    for pair in cut:
        assert conns[pair].is_closed(2.0), f"healing should close {pair}'s blackholed connection"
    for a, b in pairs:
        assert_round_trip(net, a, b, f"after {a}{b};".encode())
    for conn in conns.values():
        conn.close()


def test_one_way_grudge_drops_only_the_grudged_direction(net: EchoMesh) -> None:
    n1_dials_n2 = net.connect("n1", "n2")
    n2_dials_n1 = net.connect("n2", "n1")
    wait_until(lambda: net.nodes["n2"].broadcast(b"") >= 1 and net.nodes["n1"].broadcast(b"") >= 1,
               2.0, "both echo nodes to accept")
    net.mesh.partition({"n2": {"n1"}})  # n2 drops n1's traffic; n1 still hears n2

    n1_dials_n2.send(b"n1-to-n2;")
    n2_dials_n1.send(b"n2-to-n1;")
    wait_until(lambda: b"n2-to-n1;" in net.nodes["n1"].received(), 2.0, "n1 to hear n2 on n2's connection")
    assert n2_dials_n1.receive(64, QUIET) == b"", "n1's echo must not reach n2"
    assert b"n1-to-n2;" not in net.nodes["n2"].received(), "n2 must not hear n1 on n1's connection"

    net.nodes["n2"].broadcast(b"n2-push;")
    assert n1_dials_n2.receive(8, 2.0) == b"n2-push;", "n1 still hears n2 on n1's connection"
    n1_dials_n2.close()
    n2_dials_n1.close()


def test_reject_partition_closes_connections_and_refuses_new_ones(net: EchoMesh) -> None:
    established = net.connect("n1", "n2")
    established.send(b"x")
    assert established.receive(1, 2.0) == b"x"
    net.mesh.partition({"n1": {"n2"}, "n2": {"n1"}}, mode="reject")
    assert established.is_closed(2.0), "an established connection across the cut is closed"
    for a, b in (("n1", "n2"), ("n2", "n1")):
        with pytest.raises(ConnectionRefusedError):
            net.connect(a, b)
    assert_round_trip(net, "n1", "n3", b"not cut;")
    net.mesh.heal()
    assert_round_trip(net, "n1", "n2", b"healed;")
    assert_round_trip(net, "n2", "n1", b"healed;")


def test_one_way_reject_refuses_the_grudged_side_and_silences_its_answers(net: EchoMesh) -> None:
    net.mesh.partition({"n2": {"n1"}}, mode="reject")  # n2 drops n1's traffic
    with pytest.raises(ConnectionRefusedError):
        net.connect("n1", "n2")  # n1 cannot reach n2 at all
    n2_dials_n1 = net.connect("n2", "n1")  # n2 may still dial n1 and be heard...
    n2_dials_n1.send(b"heard;")
    wait_until(lambda: b"heard;" in net.nodes["n1"].received(), 2.0, "n1 to hear n2")
    assert n2_dials_n1.receive(6, QUIET) == b"", "...but n1's answers are dropped"
    n2_dials_n1.close()


def test_latency_of_200ms_makes_a_round_trip_take_at_least_200ms(net: EchoMesh) -> None:
    one_way = net.mesh.latency(200, links=[net.link("n1", "n2")], stream="downstream")
    conn = net.connect("n1", "n2")
    started = time.monotonic()
    conn.send(b"ping")
    assert conn.receive(4, 3.0) == b"ping"
    assert time.monotonic() - started >= 0.2
    conn.close()
    net.mesh.remove_link_fault(one_way)

    net.mesh.latency(200, links=[net.link("n1", "n2")])  # both streams: 200 ms each way
    conn = net.connect("n1", "n2")
    started = time.monotonic()
    conn.send(b"ping")
    assert conn.receive(4, 3.0) == b"ping"
    assert time.monotonic() - started >= 0.4
    conn.close()

    other = net.connect("n1", "n3")
    started = time.monotonic()
    other.send(b"ping")
    assert other.receive(4, 2.0) == b"ping"
    assert time.monotonic() - started < 0.2, "a link without the toxic is not slowed"
    other.close()


def test_link_faults_reach_only_the_chosen_links_and_streams(net: EchoMesh, server: ToxiproxyServer) -> None:
    fault = net.mesh.limit_data(1024, links=net.mesh.links_touching(["n3"]), stream="upstream")
    assert set(fault.links) == {"n1-n3-peer", "n2-n3-peer", "n3-n1-peer", "n3-n2-peer"}
    proxies = server.client.proxies()
    for link in net.links:
        toxics = proxies[link.name].toxics
        if link.name in fault.links:
            assert [(t.type, t.stream, t.toxicity) for t in toxics] == [("limit_data", "upstream", 1.0)]
        else:
            assert toxics == ()
    net.mesh.remove_link_fault(fault)
    assert net.mesh.is_healed()


def test_reset_peer_and_limit_data_end_connections(net: EchoMesh) -> None:
    net.mesh.reset_peer(0, links=[net.link("n1", "n2")], stream="upstream")
    conn = net.connect("n1", "n2")
    conn.send(b"anything")
    assert conn.is_closed(2.0), "reset_peer resets the connection once data flows"
    conn.close()
    net.mesh.limit_data(4, links=[net.link("n1", "n3")], stream="downstream")
    conn = net.connect("n1", "n3")
    conn.send(b"0123456789")
    assert conn.receive(64, 2.0) == b"0123"
    assert conn.is_closed(2.0)
    conn.close()


def test_overlapping_partitions_end_independently(net: EchoMesh) -> None:
    net.mesh.partition({"n1": {"n2"}, "n2": {"n1"}}, name="a")
    net.mesh.partition({"n1": {"n2", "n3"}, "n3": {"n1"}}, name="b")
    net.mesh.end_partition("b")
    conn = net.connect("n1", "n2")
    conn.send(b"still cut")
    assert conn.receive(9, QUIET) == b"", "ending b must keep a's cut of n1<->n2"
    conn.close()
    assert_round_trip(net, "n1", "n3", b"b ended;")
    net.mesh.end_partition("a")
    assert net.mesh.is_healed()


def test_heal_removes_every_toxic_and_enables_every_proxy(net: EchoMesh, server: ToxiproxyServer) -> None:
    net.mesh.partition({"n1": {"n2"}}, name="one-way")
    net.mesh.partition({"n2": {"n3"}, "n3": {"n2"}}, mode="reject", name="reject")
    net.mesh.latency(300, 50)
    net.mesh.bandwidth(1, links=[net.link("n3", "n1")])
    net.mesh.slow_close(500, stream="downstream")
    net.mesh.slicer(8, 4, 100, links=[net.link("n1", "n3")])
    proxies = server.client.proxies()
    assert any(not p.enabled for p in proxies.values()) and all(p.toxics for p in proxies.values())

    net.mesh.heal()
    proxies = server.client.proxies()
    assert all(p.enabled and not p.toxics for p in proxies.values()), proxies
    assert net.mesh.is_healed() and not net.mesh.link_faults() and not net.mesh.partitions()
    started = time.monotonic()
    assert_round_trip(net, "n2", "n3", b"fast again;")
    assert time.monotonic() - started < 0.3


def test_partition_cuts_every_port_of_a_pair(server: ToxiproxyServer) -> None:
    with echo_mesh(server, ("n1", "n2"), ports=("raft", "gossip")) as net:
        net.mesh.partition({"n1": {"n2"}})
        proxies = server.client.proxies()
        assert {(name, t.stream) for name, p in proxies.items() for t in p.toxics} == {
            ("n1-n2-raft", "downstream"), ("n1-n2-gossip", "downstream"),
            ("n2-n1-raft", "upstream"), ("n2-n1-gossip", "upstream")}


def test_grudges_naming_unknown_nodes_and_unknown_modes_are_refused(net: EchoMesh) -> None:
    with pytest.raises(FaultbedError, match="n9"):
        net.mesh.partition({"n1": {"n9"}})
    with pytest.raises(FaultbedError, match="partition mode"):
        net.mesh.partition({"n1": {"n2"}}, mode="drop")
    with pytest.raises(FaultbedError, match="unknown link fault"):
        net.mesh.add_link_fault("jitter", {})
    assert net.mesh.is_healed()
