"""Partition topologies: the properties each promises, for any node count and seed."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faultbed.errors import FaultbedError
from faultbed.nemesis.grudge import (
    TOPOLOGIES,
    Grudge,
    Topology,
    custom_topology,
    make_topology,
    majority,
    topology_names,
)

seeds = st.integers(min_value=0, max_value=2**32)


def names(count: int) -> list[str]:
    return [f"n{i}" for i in range(1, count + 1)]


def hears(grudge: Grudge, node: str, nodes: list[str]) -> set[str]:
    """The nodes whose traffic `node` receives, itself included."""
    return set(nodes) - set(grudge.get(node, frozenset()))


def pairs(grudge: Grudge) -> set[tuple[str, str]]:
    return {(a, b) for a, dropped in grudge.items() for b in dropped}


def is_symmetric(grudge: Grudge) -> bool:
    return all((b, a) in pairs(grudge) for a, b in pairs(grudge))


def components(grudge: Grudge, nodes: list[str]) -> list[frozenset[str]]:
    """For a complete grudge: the groups of nodes that hear exactly each other."""
    return sorted({frozenset(hears(grudge, n, nodes)) for n in nodes}, key=len)


@given(count=st.integers(2, 15), seed=seeds)
def test_halves_are_two_complete_components_smaller_first(count: int, seed: int) -> None:
    nodes = names(count)
    for name in ("halves", "random-halves"):
        topology = make_topology(name, nodes, random.Random(seed))
        parts = components(topology.grudge, nodes)
        assert [len(p) for p in parts] == [count // 2, count - count // 2]
        assert set().union(*parts) == set(nodes)
        assert is_symmetric(topology.grudge)
        for node in nodes:
            assert node not in topology.grudge.get(node, ()), "nobody drops itself"


def test_fixed_halves_follow_node_order() -> None:
    topology = make_topology("halves", names(5), random.Random(1))
    assert topology.grudge["n1"] == {"n3", "n4", "n5"} and topology.grudge["n5"] == {"n1", "n2"}


@given(count=st.integers(3, 15), seed=seeds)
def test_isolate_one_cuts_exactly_one_node_from_all_others(count: int, seed: int) -> None:
    nodes = names(count)
    grudge = make_topology("isolate-one", nodes, random.Random(seed)).grudge
    loners = [n for n in nodes if hears(grudge, n, nodes) == {n}]
    assert len(loners) == 1
    rest = set(nodes) - set(loners)
    assert all(hears(grudge, n, nodes) == rest for n in rest)


@given(count=st.integers(2, 15), seed=seeds)
def test_minority_third_cuts_a_third_at_least_one(count: int, seed: int) -> None:
    nodes = names(count)
    grudge = make_topology("minority-third", nodes, random.Random(seed)).grudge
    small, large = components(grudge, nodes)
    assert len(small) == max(1, (count - 1) // 3) and len(small | large) == count
    assert is_symmetric(grudge)


@given(count=st.integers(3, 15), seed=seeds)
def test_majorities_ring_every_node_sees_a_majority_and_no_two_the_same(count: int, seed: int) -> None:
    nodes = names(count)
    grudge = make_topology("majorities-ring", nodes, random.Random(seed)).grudge
    views = [frozenset(hears(grudge, n, nodes)) for n in nodes]
    assert all(len(v) >= majority(count) for v in views), views
    assert all(len(v) < count for v in views), "every node misses someone"
    assert len(set(views)) == count, "no two nodes see the same majority"
    if count >= 4:
        assert is_symmetric(grudge), "from 4 nodes on, a ring link works both ways"


def test_majorities_ring_of_five_is_jepsens_ring_each_node_sees_its_two_neighbours() -> None:
    nodes = names(5)
    grudge = make_topology("majorities-ring", nodes, random.Random(7)).grudge
    neighbours = {n: hears(grudge, n, nodes) - {n} for n in nodes}
    assert all(len(peers) == 2 for peers in neighbours.values())
    reached, frontier = {nodes[0]}, [nodes[0]]
    while frontier:  # connected and 2-regular: one cycle through all five
        for peer in neighbours[frontier.pop()] - reached:
            reached.add(peer)
            frontier.append(peer)
    assert reached == set(nodes)


@given(count=st.integers(3, 15), seed=seeds)
def test_bridge_node_hears_and_is_heard_by_both_sides_that_drop_each_other(count: int, seed: int) -> None:
    nodes = names(count)
    grudge = make_topology("bridge", nodes, random.Random(seed)).grudge
    bridges = [n for n in nodes if n not in grudge and all(n not in d for d in grudge.values())]
    assert len(bridges) == 1
    bridge = bridges[0]
    sides = components({n: d for n, d in grudge.items()}, [n for n in nodes if n != bridge])
    assert len(sides) == 2 and not sides[0] & sides[1]
    for side, other in (sides, sides[::-1]):
        for node in side:
            assert grudge[node] == other, "each side drops exactly the other side"
    assert hears(grudge, bridge, nodes) == set(nodes)


@given(count=st.integers(3, 12), seed=seeds, base=st.sampled_from(sorted(TOPOLOGIES)))
def test_one_way_variants_drop_one_direction_of_each_cut_pair(count: int, seed: int, base: str) -> None:
    nodes = names(count)
    both = make_topology(base, nodes, random.Random(seed)).grudge
    one = make_topology("one-way-" + base, nodes, random.Random(seed)).grudge
    for a, b in pairs(one):
        assert (b, a) not in pairs(one), f"{a} drops {b} but {b} must still hear {a}"
    assert pairs(one) <= pairs(both)
    assert {frozenset(p) for p in pairs(one)} == {frozenset(p) for p in pairs(both)}, \
        "every pair cut both ways is cut one way"


def test_one_way_halves_first_half_drops_the_second_which_still_hears_it() -> None:
    topology = make_topology("one-way-halves", names(4), random.Random(0))
    assert topology.grudge == {"n1": {"n3", "n4"}, "n2": {"n3", "n4"}}
    assert topology.description == "one-way halves: n1,n2 drop n3,n4"


@given(count=st.integers(3, 10), seed=seeds, name=st.sampled_from(topology_names()))
def test_the_same_seed_gives_the_same_topology(count: int, seed: int, name: str) -> None:
    first = make_topology(name, names(count), random.Random(seed))
    again = make_topology(name, names(count), random.Random(seed))
    assert first == again
    assert Topology.from_json(json.loads(json.dumps(first.to_json()))) == first


@settings(max_examples=20)
@given(seed=seeds)
def test_different_seeds_choose_different_random_halves(seed: int) -> None:
    chosen = {frozenset(make_topology("random-halves", names(6), random.Random(seed + i)).grudge["n1"])
              for i in range(20)}
    assert len(chosen) > 1


def test_custom_json_grudge_is_taken_as_given() -> None:
    topology = make_topology('{"n1": ["n2", "n3"], "n2": []}', names(3), random.Random(0))
    assert topology.grudge == {"n1": frozenset({"n2", "n3"})}
    assert topology.name == "custom" and "n1 drops n2,n3" in topology.description


@pytest.mark.parametrize("text, message", [
    ('{"n1": ["n9"]}', "unknown node"),
    ('{"n1": ["n1"]}', "own traffic"),
    ('{"n1": "n2"}', "JSON object of node -> list"),
    ('{"n1": [', "not JSON"),
])
def test_bad_custom_grudges_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(FaultbedError, match=message):
        custom_topology(text, names(3))


def test_too_few_nodes_and_unknown_topologies_are_refused() -> None:
    with pytest.raises(FaultbedError, match="at least 3 nodes"):
        make_topology("bridge", names(2), random.Random(0))
    with pytest.raises(FaultbedError, match="at least 2 nodes"):
        make_topology("halves", names(1), random.Random(0))
    with pytest.raises(FaultbedError, match="unknown partition topology 'star'.*majorities-ring"):
        make_topology("star", names(3), random.Random(0))
