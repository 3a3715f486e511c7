"""Network fault kinds: partitions along a grudge, and Toxiproxy toxics on links.

Both act only through the mesh; the executor heals the whole mesh at the end, so
neither needs a heal of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from faultbed.cluster.mesh import LinkFault
from faultbed.errors import FaultbedError
from faultbed.nemesis.grudge import Topology, make_topology
from faultbed.nemesis.kinds import ActiveFault, Alias, FaultContext, FaultKindBase
from faultbed.nemesis.targets import plan_targets, resolve_targets

TOPOLOGY_HELP = ("TOPOLOGY: halves, random-halves, isolate-one, majorities-ring, bridge, minority-third, "
                 "or one-way-<any of these>")


class PartitionKind(FaultKindBase[str]):
    """Cut the mesh along a grudge (spec.partition_mode: blackhole or reject); heal that cut at stop."""

    name = "partition"
    description = "network partition, random halves (partition:TOPOLOGY or partition:{JSON grudge})"
    color = "#efaefc"
    aliases = (
        Alias("partition-halves", "halves", "partition: first half of the nodes | second half"),
        Alias("partition-random-halves", "random-halves", "partition: two random halves"),
        Alias("partition-isolate", "isolate-one", "partition: one random node cut off"),
        Alias("partition-ring", "majorities-ring", "partition: every node sees a majority, no two the same"),
        Alias("partition-bridge", "bridge", "partition: two halves joined by one node that sees both"),
        Alias("partition-minority", "minority-third", "partition: a random third of the nodes cut off"),
        Alias("partition-one-way", "one-way-random-halves",
              "partition: one random half drops the other's traffic, not vice versa"),
    )

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        return {"topology": make_topology(arg or "random-halves", nodes, rng).to_json()}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[str]:
        topology = Topology.from_json(params["topology"])
        with ctx.lock:
            ctx.cluster.mesh.partition(topology.grudge, ctx.partition_mode, name=fault_id)
        details = {"grudge": params["topology"]["grudge"], "mode": ctx.partition_mode}
        return ActiveFault(fault_id, self.name, f"partition ({ctx.partition_mode}) {topology.description}",
                           details, state=fault_id)

    def stop(self, ctx: FaultContext, active: ActiveFault[str]) -> str:
        with ctx.lock:
            ctx.cluster.mesh.end_partition(active.state)
        return "partition healed"


@dataclass(frozen=True)
class LinkKind(FaultKindBase[LinkFault]):
    """A Toxiproxy toxic of type `toxic` on both streams of all links (or of the links
    touching chosen nodes); `defaults` are its attributes, overridable per run with
    spec.options["toxic_attributes"] = {NAME: {...}}."""

    name: str
    toxic: str
    defaults: dict[str, int] = field(hash=False)
    description: str
    color: str

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"attributes": self.attributes(options), "stream": "both"}
        if arg not in (None, "all"):
            params.update(plan_targets(arg, nodes, rng, self.name))
        return params

    def attributes(self, options: dict[str, Any]) -> dict[str, int]:
        """The defaults with the run's overrides; FaultbedError for an attribute the toxic lacks."""
        overrides = (options.get("toxic_attributes") or {}).get(self.name) or {}
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise FaultbedError(f"{self.name}: unknown toxic attribute(s) {sorted(unknown)} "
                                f"(known: {sorted(self.defaults)})")
        return {**self.defaults, **overrides}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[LinkFault]:
        mesh = ctx.cluster.mesh
        details: dict[str, Any] = {"attributes": params["attributes"], "stream": params["stream"]}
        if "target" in params:
            nodes, extra = resolve_targets(ctx, params)
            links = mesh.links_touching(nodes)
            where = "links of " + ",".join(nodes)
            details.update(nodes=nodes, **extra)
        else:
            links, where = mesh.links, "all links"
        with ctx.lock:
            fault = mesh.add_link_fault(self.name, params["attributes"], links, params["stream"], self.toxic)
        details["links"] = list(fault.links)
        attributes = " ".join(f"{k}={v}" for k, v in params["attributes"].items())
        return ActiveFault(fault_id, self.name, f"{self.name} {attributes} on {where}", details, state=fault)

    def stop(self, ctx: FaultContext, active: ActiveFault[LinkFault]) -> str:
        with ctx.lock:
            ctx.cluster.mesh.remove_link_fault(active.state)
        return f"{self.name} removed"


PARTITION = PartitionKind()
LATENCY = LinkKind("latency", "latency", {"latency": 100, "jitter": 50},
                   "100 ms (+-50) on every link, both directions (latency:TARGET: links of some nodes)", "#c7e9ff")
BANDWIDTH = LinkKind("bandwidth", "bandwidth", {"rate": 16}, "links limited to 16 KB/s", "#b5e8d5")
SLOW_CLOSE = LinkKind("slow-close", "slow_close", {"delay": 2000}, "connections take 2 s to close", "#d9d2f5")
RESET_PEER = LinkKind("reset-peer", "reset_peer", {"timeout": 200},
                      "connections reset (TCP RST) 200 ms after data flows", "#ffb3b3")
SLICER = LinkKind("slicer", "slicer", {"average_size": 64, "size_variation": 32, "delay": 1000},  # delay in µs
                  "data sliced into ~64-byte chunks, 1 ms apart", "#e0f0a8")
LIMIT_DATA = LinkKind("limit-data", "limit_data", {"bytes": 4096}, "connections closed after 4 KB", "#f5d0e6")
