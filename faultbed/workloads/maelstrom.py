"""Maelstrom's workloads, with its request and response shapes (its doc/workloads.md).

They run against the `maelstrom` system (`faultbed run --bin PATH`): each workload is also the
codec its client speaks, turning an operation into a request body and a reply body into an
outcome. The history shapes are the contract with checkers/maelstrom.py:

    echo        f=echo value=<string>                   ok value = the string echoed
    unique-ids  f=generate                              ok value = the id (any JSON)
    broadcast   f=topology (once per node, at the start), f=broadcast value=<int>, f=read -> sorted ints
    g-set       f=add value=<int>, f=read -> sorted list
    g-counter   f=add value=<delta >= 0>, f=read -> int      pn-counter: deltas may be negative
    lin-kv      read/write/cas on integer keys, as the register workload (cas value [from, to])

Broadcast's topology is Maelstrom's default, a grid. Broadcast, g-set and the counters end with
a convergence wait after the heal, then one read per node (process >= 1,000,000).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterator

from faultbed.cluster.systems import OK
from faultbed.cluster.systems.maelstrom.client import error_outcome, unexpected
from faultbed.cluster.systems.maelstrom.protocol import KEY_DOES_NOT_EXIST
from faultbed.spec import TestSpec
from faultbed.worker import Worker
from faultbed.workloads import PlannedOp, worker_random

Answer = tuple[str, Any, "str | None"]
CONVERGENCE_WAIT = 3.0  # seconds between the heal and the final reads (spec option "convergence_wait")
VALUE_SPACE = 1_000_000  # worker w's broadcast/add values are w * VALUE_SPACE + i: unique, and say who sent them


def grid_topology(nodes: list[str]) -> dict[str, list[str]]:
    """Maelstrom's default topology: nodes row by row in a square grid, neighbours up/down/left/right."""
    side = max(1, math.ceil(math.sqrt(len(nodes))))
    topology: dict[str, list[str]] = {}
    for index, node in enumerate(nodes):
        row, column = divmod(index, side)
        around = [(row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)]
        topology[node] = [nodes[r * side + c] for r, c in around
                          if 0 <= c < side and 0 <= r * side + c < len(nodes) and r >= 0]
    return topology


def node_names(count: int) -> list[str]:
    return [f"n{i}" for i in range(1, count + 1)]


class MaelstromWorkload:
    """What every Maelstrom workload shares: the codec, perform, and no final phase."""

    name = ""
    description = ""
    checkers: tuple[str, ...] = ()
    # f -> (request type, field the value goes in or None)
    requests: dict[str, tuple[str, str | None]] = {}

    def request(self, f: str, key: Any, value: Any) -> dict[str, Any]:
        kind, field = self.requests[f]
        body: dict[str, Any] = {"type": kind}
        if key is not None:
            body["key"] = key
        if field is not None:
            body[field] = value
        return body

    def outcome(self, f: str, key: Any, value: Any, body: dict[str, Any]) -> Answer:
        if body.get("type") == "error":
            return error_outcome(f, body)
        if body.get("type") != self.requests[f][0] + "_ok":
            return unexpected(f, body)
        return self.result(f, value, body)

    def result(self, f: str, value: Any, body: dict[str, Any]) -> Answer:
        """An `_ok` reply as an outcome (default: the value sent)."""
        return OK, value, None

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        raise NotImplementedError

    def perform(self, worker: Worker, op: PlannedOp) -> None:
        worker.execute(op, node=op.extra.get("to"))

    def final(self, spec: TestSpec, new_worker: Callable[[str], Worker], nodes: list[str]) -> None:
        pass


class EchoWorkload(MaelstromWorkload):
    name = "echo"
    description = "Maelstrom echo: every request's text comes back unchanged"
    checkers = ("echo",)
    requests = {"echo": ("echo", "echo")}

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        rng = worker_random(spec, worker)
        for index in range(10**12):
            yield PlannedOp("echo", value=f"w{worker}-{index}-{rng.randrange(10**6)}")

    def result(self, f: str, value: Any, body: dict[str, Any]) -> Answer:
        return OK, body.get("echo"), None


class UniqueIdsWorkload(MaelstromWorkload):
    name = "unique-ids"
    description = "Maelstrom unique-ids: every generated id is unique across the cluster, also under faults"
    checkers = ("unique-ids",)
    requests = {"generate": ("generate", None)}

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        while True:
            yield PlannedOp("generate")

    def result(self, f: str, value: Any, body: dict[str, Any]) -> Answer:
        if "id" not in body:
            return unexpected(f, body)
        return OK, body["id"], None


class SetLikeWorkload(MaelstromWorkload):
    """Adds (or broadcasts) and reads, then a convergence wait and one final read per node."""

    add = "add"
    read_field = "value"
    read_share = 0.5

    def values(self, rng: Any, worker: int, index: int) -> Any:
        return worker * VALUE_SPACE + index

    def setup(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        return iter(())

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        rng = worker_random(spec, worker)
        yield from self.setup(spec, worker)
        index = 0
        while True:
            if rng.random() < self.read_share:
                yield PlannedOp("read")
            else:
                yield PlannedOp(self.add, value=self.values(rng, worker, index))
                index += 1

    def result(self, f: str, value: Any, body: dict[str, Any]) -> Answer:
        if f != "read":
            return OK, value, None
        if self.read_field not in body:
            return unexpected(f, body)
        return OK, self.read_value(body[self.read_field]), None

    def read_value(self, found: Any) -> Any:
        if isinstance(found, list):
            try:
                return sorted(found)
            except TypeError:
                return found
        return found

    def final(self, spec: TestSpec, new_worker: Callable[[str], Worker], nodes: list[str]) -> None:
        time.sleep(float(spec.options.get("convergence_wait", CONVERGENCE_WAIT)))
        for node in nodes:
            with new_worker(node) as worker:
                worker.execute(PlannedOp("read"))


class BroadcastWorkload(SetLikeWorkload):
    name = "broadcast"
    description = "Maelstrom broadcast: every acknowledged message reaches every node (grid topology)"
    checkers = ("broadcast",)
    requests = {"broadcast": ("broadcast", "message"), "read": ("read", None), "topology": ("topology", "topology")}
    add = "broadcast"
    read_field = "messages"

    def setup(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        """Worker w tells nodes w, w + concurrency, ... the topology, before anything else it does."""
        nodes = node_names(spec.nodes)
        topology = grid_topology(nodes)
        for node in nodes[worker::spec.concurrency]:
            yield PlannedOp("topology", value=topology, extra={"to": node})


class GSetWorkload(SetLikeWorkload):
    name = "g-set"
    description = "Maelstrom g-set: a grow-only set; every acknowledged add in every node's final read"
    checkers = ("g-set",)
    requests = {"add": ("add", "element"), "read": ("read", None)}


class GCounterWorkload(SetLikeWorkload):
    name = "g-counter"
    description = "Maelstrom g-counter: final reads within the bounds the acknowledged and unknown adds allow"
    checkers = ("counter",)
    requests = {"add": ("add", "delta"), "read": ("read", None)}
    low = 0

    def values(self, rng: Any, worker: int, index: int) -> Any:
        return rng.randint(self.low, 5)


class PNCounterWorkload(GCounterWorkload):
    name = "pn-counter"
    description = "Maelstrom pn-counter: a counter with negative adds too, checked against its bounds"
    low = -5


class LinKVWorkload(MaelstromWorkload):
    """read, write and cas on integer keys; the `linearizable` checker (kv model: missing reads null)."""

    name = "lin-kv"
    description = "Maelstrom lin-kv: read/write/cas on a few integer keys, checked for linearizability"
    checkers = ("linearizable",)
    requests = {"read": ("read", None), "write": ("write", "value"), "cas": ("cas", None)}
    MIX = (("read", 0.5), ("write", 0.3), ("cas", 0.2))
    VALUES = 5

    def request(self, f: str, key: Any, value: Any) -> dict[str, Any]:
        if f == "cas":
            return {"type": "cas", "key": key, "from": value[0], "to": value[1]}
        return super().request(f, key, value)

    def outcome(self, f: str, key: Any, value: Any, body: dict[str, Any]) -> Answer:
        if f == "read" and body.get("type") == "error" and body.get("code") == KEY_DOES_NOT_EXIST:
            return OK, None, None  # a key never written reads as the model's initial value
        return super().outcome(f, key, value, body)

    def result(self, f: str, value: Any, body: dict[str, Any]) -> Answer:
        if f == "read":
            return (OK, body["value"], None) if "value" in body else unexpected(f, body)
        return OK, value, None

    def operations(self, spec: TestSpec, worker: int) -> Iterator[PlannedOp]:
        rng = worker_random(spec, worker)
        names = [f for f, _ in self.MIX]
        weights = [w for _, w in self.MIX]
        while True:
            f = rng.choices(names, weights)[0]
            key = rng.randrange(spec.keys)
            if f == "read":
                yield PlannedOp("read", key)
            elif f == "write":
                yield PlannedOp("write", key, rng.randrange(self.VALUES))
            else:
                yield PlannedOp("cas", key, [rng.randrange(self.VALUES), rng.randrange(self.VALUES)])

    def final(self, spec: TestSpec, new_worker: Callable[[str], Worker], nodes: list[str]) -> None:
        for node in nodes:
            with new_worker(node) as worker:
                for key in range(spec.keys):
                    worker.execute(PlannedOp("read", key))


ECHO = EchoWorkload()
UNIQUE_IDS = UniqueIdsWorkload()
BROADCAST = BroadcastWorkload()
G_SET = GSetWorkload()
G_COUNTER = GCounterWorkload()
PN_COUNTER = PNCounterWorkload()
LIN_KV = LinKVWorkload()
WORKLOADS = (ECHO, UNIQUE_IDS, BROADCAST, G_SET, G_COUNTER, PN_COUNTER, LIN_KV)
