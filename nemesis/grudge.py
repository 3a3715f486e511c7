"""Partition topologies as pure functions: (nodes, seeded random) -> who drops whose traffic.

A grudge is `{node: nodes whose traffic it drops}` (Jepsen's term). Topologies
follow Jepsen's nemesis namespace: halves, random halves, one isolated node,
majorities ring, bridge, minority third. Each has a one-way variant, in which
only one side drops the other's traffic ("a drops b's traffic, b still hears a").
A custom grudge can be given as JSON: `{"n1": ["n2", "n3"], ...}`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from faultbed.errors import FaultbedError

Grudge = dict[str, frozenset[str]]
ONE_WAY = "one-way-"


@dataclass(frozen=True)
class Topology:
    """A named grudge with a short human description."""

    name: str
    grudge: Grudge = field(hash=False)
    description: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "grudge": grudge_to_json(self.grudge), "description": self.description}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Topology":
        return cls(data["name"], grudge_from_json(data["grudge"]), data["description"])


def grudge_to_json(grudge: Mapping[str, frozenset[str]]) -> dict[str, list[str]]:
    return {node: sorted(dropped) for node, dropped in sorted(grudge.items()) if dropped}


def grudge_from_json(data: Mapping[str, Sequence[str]]) -> Grudge:
    return {str(node): frozenset(map(str, dropped)) for node, dropped in data.items() if dropped}


def majority(count: int) -> int:
    """The smallest number of nodes strictly more than half."""
    return count // 2 + 1


def bisect(nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Cut a sequence in half, smaller half first (Jepsen's bisect)."""
    middle = len(nodes) // 2
    return list(nodes[:middle]), list(nodes[middle:])


def complete_grudge(components: Sequence[Sequence[str]]) -> Grudge:
    """Every node drops the traffic of every node outside its own component."""
    universe = frozenset(n for component in components for n in component)
    grudge: Grudge = {}
    for component in components:
        outside = universe - frozenset(component)
        for node in component:
            if outside:
                grudge[node] = outside
    return grudge


def one_way(grudge: Mapping[str, frozenset[str]], order: Sequence[str]) -> Grudge:
    """Of each mutual pair keep only `a drops b` with `a` before `b` in `order` (b still hears a).

    Drops that are already one-way stay as they are.
    """
    position = {node: i for i, node in enumerate(order)}
    result: Grudge = {}
    for a, dropped in grudge.items():
        kept = frozenset(b for b in dropped
                         if position[a] < position[b] or a not in grudge.get(b, frozenset()))
        if kept:
            result[a] = kept
    return result


def describe_grudge(grudge: Mapping[str, frozenset[str]]) -> str:
    """Nodes with the same grudge grouped: 'n1,n2 drop n3,n4,n5; n3,n4,n5 drop n1,n2'."""
    groups: dict[frozenset[str], list[str]] = {}
    for node, dropped in sorted(grudge.items(), key=lambda item: _node_key(item[0])):
        if dropped:
            groups.setdefault(frozenset(dropped), []).append(node)
    if not groups:
        return "nobody drops anything"
    return "; ".join(f"{_names(nodes)} {'drop' if len(nodes) > 1 else 'drops'} {_names(dropped)}"
                     for dropped, nodes in groups.items())


def _names(nodes: Iterable[str]) -> str:
    return ",".join(sorted(nodes, key=_node_key))


def _node_key(node: str) -> tuple[str, int]:
    """Sort n2 before n10."""
    head = node.rstrip("0123456789")
    tail = node[len(head):]
    return head, int(tail) if tail else -1


def _need(nodes: Sequence[str], count: int, topology: str) -> None:
    if len(nodes) < count:
        raise FaultbedError(f"partition {topology} needs at least {count} nodes, got {len(nodes)}")
    if len(set(nodes)) != len(nodes):
        raise FaultbedError(f"partition {topology}: duplicate node names in {list(nodes)}")


# -- topologies: each returns (grudge, order for the one-way variant, description) ------------

_Result = tuple[Grudge, list[str], str]


def _halves(nodes: Sequence[str], rng: random.Random) -> _Result:
    _need(nodes, 2, "halves")
    first, second = bisect(list(nodes))
    return complete_grudge([first, second]), first + second, f"{_names(first)} | {_names(second)}"


def _random_halves(nodes: Sequence[str], rng: random.Random) -> _Result:
    _need(nodes, 2, "random-halves")
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    return _halves(shuffled, rng)


def _isolate_one(nodes: Sequence[str], rng: random.Random) -> _Result:
    _need(nodes, 2, "isolate-one")
    loner = rng.choice(list(nodes))
    rest = [n for n in nodes if n != loner]
    return complete_grudge([[loner], rest]), [loner] + rest, f"{loner} isolated from {_names(rest)}"


def _minority_third(nodes: Sequence[str], rng: random.Random) -> _Result:
    _need(nodes, 2, "minority-third")
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    size = max(1, (len(nodes) - 1) // 3)  # Jepsen's minority-third, at least one node
    minority, rest = shuffled[:size], shuffled[size:]
    return (complete_grudge([minority, rest]), minority + rest,
            f"minority {_names(minority)} | {_names(rest)}")


def _bridge(nodes: Sequence[str], rng: random.Random) -> _Result:
    """Two halves; the first node of the larger half talks to both, nobody drops it."""
    _need(nodes, 3, "bridge")
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    first, second = bisect(shuffled)
    bridge, rest = second[0], second[1:]
    grudge = complete_grudge([first, rest])
    return grudge, first + [bridge] + rest, f"{_names(first)} | {_names(rest)} bridged by {bridge}"


def ring_offsets(count: int) -> list[int]:
    """Symmetric ring offsets so that each node sees a majority (itself included) and views differ.

    Neighbours on both sides; when the missing one cannot be split evenly on an
    even ring, the opposite node. Empty when no such ring exists (fewer than 4 nodes).
    """
    need = majority(count) - 1  # peers to see besides itself
    if count < 4:
        return []
    if need % 2 == 0:
        side = need // 2
        return [o for d in range(1, side + 1) for o in (d, -d)]
    if count % 2 == 0:
        side = (need - 1) // 2
        return [o for d in range(1, side + 1) for o in (d, -d)] + [count // 2]
    side = (need + 1) // 2
    return [o for d in range(1, side + 1) for o in (d, -d)]


def _majorities_ring(nodes: Sequence[str], rng: random.Random) -> _Result:
    """Every node sees a majority, no two the same majority (Jepsen's majorities-ring).

    From 4 nodes on, visibility is symmetric (a ring, as Jepsen's perfect variant
    for 5 nodes). With 3 nodes no symmetric solution exists: each node hears only
    its successor on the ring (Jepsen's original, one-way ring).
    """
    _need(nodes, 3, "majorities-ring")
    ring = list(nodes)
    rng.shuffle(ring)
    count = len(ring)
    offsets = ring_offsets(count) or [1]
    grudge: Grudge = {}
    views: list[str] = []
    for i, node in enumerate(ring):
        seen = {ring[(i + o) % count] for o in offsets}
        grudge[node] = frozenset(ring) - seen - {node}
        views.append(f"{node} sees {_names(seen)}")
    return grudge, ring, "ring " + " ".join(ring) + ": " + "; ".join(views)


TOPOLOGIES: dict[str, Callable[[Sequence[str], random.Random], _Result]] = {
    "halves": _halves,
    "random-halves": _random_halves,
    "isolate-one": _isolate_one,
    "majorities-ring": _majorities_ring,
    "bridge": _bridge,
    "minority-third": _minority_third,
}

TOPOLOGY_DESCRIPTIONS = {
    "halves": "first half of the nodes | second half (fixed)",
    "random-halves": "two random halves, the smaller one first",
    "isolate-one": "one random node cut off from all others",
    "majorities-ring": "every node sees a majority, no two the same",
    "bridge": "two halves joined by one node that sees both",
    "minority-third": "a random third (at least one node) cut off from the rest",
}


def topology_names() -> list[str]:
    """Every name `make_topology` knows, one-way variants included (JSON grudges aside)."""
    return list(TOPOLOGIES) + [ONE_WAY + name for name in TOPOLOGIES]


def make_topology(name: str, nodes: Sequence[str], rng: random.Random) -> Topology:
    """The topology called `name` (`one-way-<name>` for one-way, or a JSON object) over `nodes`."""
    if name.lstrip().startswith("{"):
        return custom_topology(name, nodes)
    base = name[len(ONE_WAY):] if name.startswith(ONE_WAY) else name
    if base not in TOPOLOGIES:
        known = ", ".join(topology_names())
        raise FaultbedError(f"unknown partition topology {name!r} (known: {known}, or a JSON grudge)")
    grudge, order, description = TOPOLOGIES[base](nodes, rng)
    if base != name:
        grudge = one_way(grudge, order)
        return Topology(name, grudge, f"one-way {base}: {describe_grudge(grudge)}")
    return Topology(name, grudge, f"{base}: {description}")


def parse_custom_grudge(text: str) -> Grudge:
    """A JSON grudge `{"n1": ["n2"], ...}`; FaultbedError on anything else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FaultbedError(f"custom grudge is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in data.items()):
        raise FaultbedError('custom grudge must be a JSON object of node -> list of nodes, '
                            'e.g. {"n1": ["n2", "n3"]}')
    return grudge_from_json(data)


def custom_topology(text: str, nodes: Sequence[str]) -> Topology:
    """A custom JSON grudge checked against `nodes`."""
    grudge = parse_custom_grudge(text)
    named = set(grudge) | {n for dropped in grudge.values() for n in dropped}
    unknown = named - set(nodes)
    if unknown:
        raise FaultbedError(f"custom grudge names unknown node(s) {_names(frozenset(unknown))} "
                            f"(nodes: {_names(list(nodes))})")
    selfish = [n for n, dropped in grudge.items() if n in dropped]
    if selfish:
        raise FaultbedError(f"custom grudge: a node cannot drop its own traffic ({_names(selfish)})")
    return Topology("custom", grudge, f"custom: {describe_grudge(grudge)}")
