"""Fault kinds by name: what each start and stop does, acting only through the mesh and the backend.

A nemesis entry is `KIND` or `KIND:ARG` (`kill:minority`, `kill:n1+n3`,
`partition:bridge`, `latency:one`, `partition:{"n1": ["n2"]}`), or one of the aliases below
(`partition-ring`, `kill-primary`, ...). `plan` turns an entry into JSON-able
parameters when the schedule is generated (grudges and node sets are chosen
there, from the schedule's seeded random, so schedule.json says exactly what
will happen); only `primary` is resolved when the fault starts, from the
cluster's current leader (falling back to a node chosen at planning time).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from faultbed.cluster.backend import DEAD, PAUSED, RUNNING, Backend
from faultbed.cluster.mesh import BLACKHOLE, LINK_TOXICS, PARTITION_MODES, LinkFault, Mesh
from faultbed.errors import FaultbedError, SetupError
from faultbed.nemesis.grudge import Topology, make_topology, majority, topology_names

log = logging.getLogger(__name__)

NONE = "none"
PRIMARY = "primary"
TARGETS = ("one", "minority", "majority", "all", PRIMARY, "random")

ALIASES: dict[str, tuple[str, str | None]] = {
    "partition-halves": ("partition", "halves"),
    "partition-random-halves": ("partition", "random-halves"),
    "partition-isolate": ("partition", "isolate-one"),
    "partition-ring": ("partition", "majorities-ring"),
    "partition-bridge": ("partition", "bridge"),
    "partition-minority": ("partition", "minority-third"),
    "partition-one-way": ("partition", "one-way-random-halves"),
    "kill-primary": ("kill", PRIMARY),
    "pause-primary": ("pause", PRIMARY),
}

# Toxiproxy attributes of each link fault (ms unless said); override per kind with
# spec.options["toxic_attributes"] = {"latency": {"latency": 500}}.
DEFAULT_TOXIC_ATTRIBUTES: dict[str, dict[str, int]] = {
    "latency": {"latency": 100, "jitter": 50},
    "bandwidth": {"rate": 16},  # KB/s
    "slow-close": {"delay": 2000},
    "reset-peer": {"timeout": 200},
    "slicer": {"average_size": 64, "size_variation": 32, "delay": 1000},  # delay in microseconds
    "limit-data": {"bytes": 4096},
}

FAULT_KINDS: dict[str, str] = {
    "none": "no faults",
    "partition": "network partition, random halves (partition:TOPOLOGY or partition:{JSON grudge})",
    "partition-halves": "partition: first half of the nodes | second half",
    "partition-isolate": "partition: one random node cut off",
    "partition-ring": "partition: every node sees a majority, no two the same",
    "partition-bridge": "partition: two halves joined by one node that sees both",
    "partition-minority": "partition: a random third of the nodes cut off",
    "partition-one-way": "partition: one random half drops the other's traffic, not vice versa",
    "latency": "100 ms (+-50) on every link, both directions (latency:TARGET: links of some nodes)",
    "bandwidth": "links limited to 16 KB/s",
    "slow-close": "connections take 2 s to close",
    "reset-peer": "connections reset (TCP RST) 200 ms after data flows",
    "slicer": "data sliced into ~64-byte chunks, 1 ms apart",
    "limit-data": "connections closed after 4 KB",
    "kill": "SIGKILL one node (kill:TARGET), restart it at stop",
    "pause": "SIGSTOP one node (pause:TARGET), SIGCONT at stop",
    "kill-primary": "SIGKILL the current Raft leader, restart it at stop",
    "pause-primary": "SIGSTOP the current Raft leader, SIGCONT at stop",
    "rolling-restart": "restart every node in turn, waiting for each to rejoin",
}
TOPOLOGY_HELP = ("TOPOLOGY: halves, random-halves, isolate-one, majorities-ring, bridge, minority-third, "
                 "or one-way-<any of these>")
TARGET_HELP = "TARGET: one, minority, majority, all, primary, random, or node names joined by + (n1+n3)"

NEMESIS_SYNTAX = (TOPOLOGY_HELP, TARGET_HELP,
                  'custom grudge: partition:{"n1": ["n2", "n3"]} (n1 drops the traffic of n2 and n3)')


class NemesisCluster(Protocol):
    """What the nemesis needs of a cluster (cluster.running.RunningCluster has it)."""

    nodes: list[str]
    backend: Backend
    mesh: Mesh

    def leader(self, timeout: float = 1.0) -> str | None: ...
    def wait_ready(self, timeout: float, nodes: list[str] | None = None) -> str | None: ...


@dataclass(frozen=True)
class FaultEntry:
    """One parsed nemesis entry: `text` as the user wrote it, its kind and argument."""

    text: str
    kind: str
    arg: str | None


@dataclass(frozen=True)
class FaultContext:
    """Where faults act: the cluster, the partition mode, a stop signal for long actions.

    `lock` serializes actions on the backend and mesh (fault kinds run on their own threads);
    `record(active, f, value, **extra)` writes a progress event of a long fault to the history.
    """

    cluster: NemesisCluster
    partition_mode: str = BLACKHOLE
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)
    ready_timeout: float = 30.0
    record: Callable[..., None] = field(default=lambda active, f, value, **extra: None)


@dataclass
class ActiveFault:
    """A fault that has started: what to undo, how to say it, what to record."""

    id: str
    kind: str
    summary: str
    details: dict[str, Any]
    undo: Any = None


def split_nemesis(text: str) -> tuple[str, ...]:
    """Split a `--nemesis` value at commas outside JSON braces and brackets; drops `none`."""
    entries: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
        if char == "," and depth <= 0:
            entries.append("".join(current))
            current = []
        else:
            current.append(char)
    entries.append("".join(current))
    return tuple(e.strip() for e in entries if e.strip() and e.strip() != NONE)


def parse_fault(text: str) -> FaultEntry:
    """`KIND`, `KIND:ARG` or an alias -> FaultEntry; FaultbedError on unknown names."""
    name = text.strip()
    if name in ALIASES:
        kind, arg = ALIASES[name]
        return FaultEntry(name, kind, arg)
    kind, _, arg = name.partition(":")
    if kind not in KINDS:
        known = ", ".join(k for k in FAULT_KINDS if k != NONE)
        raise FaultbedError(f"unknown nemesis {text!r} (known: {known}; or none)")
    return FaultEntry(name, kind, arg or None)


def validate_entries(names: Sequence[str], nodes: Sequence[str], partition_mode: str,
                     options: dict[str, Any] | None = None) -> list[FaultEntry]:
    """Parse and plan every entry once over `nodes`, so bad names and arguments fail before a run."""
    if partition_mode not in PARTITION_MODES:
        raise FaultbedError(f"unknown partition mode {partition_mode!r} (known: {', '.join(PARTITION_MODES)})")
    if NONE in names and len(names) > 1:
        raise FaultbedError("nemesis `none` cannot be combined with other faults")
    entries = [parse_fault(n) for n in names if n != NONE]
    seen = [e.text for e in entries]
    duplicates = sorted({t for t in seen if seen.count(t) > 1})
    if duplicates:
        raise FaultbedError(f"nemesis listed twice: {', '.join(duplicates)}")
    for entry in entries:
        KINDS[entry.kind].plan(entry.arg, nodes, random.Random(0), options or {})
    return entries


def toxic_attributes(kind: str, options: dict[str, Any]) -> dict[str, int]:
    overrides = (options.get("toxic_attributes") or {}).get(kind) or {}
    attributes = {**DEFAULT_TOXIC_ATTRIBUTES[kind], **overrides}
    unknown = set(attributes) - set(DEFAULT_TOXIC_ATTRIBUTES[kind])
    if unknown:
        raise FaultbedError(f"{kind}: unknown toxic attribute(s) {sorted(unknown)} "
                            f"(known: {sorted(DEFAULT_TOXIC_ATTRIBUTES[kind])})")
    return attributes


# -- targets ---------------------------------------------------------------------------------

def plan_targets(target: str | None, nodes: Sequence[str], rng: random.Random, what: str) -> dict[str, Any]:
    """Choose nodes for `target` now; `primary` keeps a fallback node for when no leader is known."""
    target = target or "one"
    ordered = list(nodes)
    count = len(ordered)
    sizes = {"one": 1, "minority": (count - 1) // 2, "majority": majority(count), "all": count}
    if target == PRIMARY:
        return {"target": PRIMARY, "fallback": rng.choice(ordered)}
    if target == "random":
        return {"target": target, "nodes": sorted(rng.sample(ordered, rng.randint(1, count)))}
    if target in sizes:
        size = min(sizes[target], count)
        if size < 1:
            raise FaultbedError(f"{what}:{target} needs more nodes than {count}")
        return {"target": target, "nodes": sorted(rng.sample(ordered, size))}
    named = [n.strip() for n in target.split("+") if n.strip()]
    unknown = [n for n in named if n not in ordered]
    if not named or unknown:
        raise FaultbedError(f"{what}: unknown target {target!r} ({TARGET_HELP}; nodes: {', '.join(ordered)})")
    return {"target": target, "nodes": sorted(set(named))}


def resolve_targets(ctx: FaultContext, params: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The planned nodes, or for `primary` the current leader (else the planned fallback)."""
    if params.get("target") != PRIMARY:
        return list(params["nodes"]), {}
    leader = ctx.cluster.leader()
    if leader is None:
        log.warning("no leader known; targeting the fallback node %s", params["fallback"])
        return [params["fallback"]], {"leader": None}
    return [leader], {"leader": leader}


# -- kinds -------------------------------------------------------------------------------------

class FaultKind(Protocol):
    @property
    def name(self) -> str: ...

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]: ...
    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault: ...
    def stop(self, ctx: FaultContext, active: ActiveFault) -> str: ...


class PartitionKind:
    """Cut the mesh along a grudge (spec.partition_mode: blackhole or reject); heal that cut at stop."""

    name = "partition"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        return {"topology": make_topology(arg or "random-halves", nodes, rng).to_json()}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault:
        topology = Topology.from_json(params["topology"])
        with ctx.lock:
            ctx.cluster.mesh.partition(topology.grudge, ctx.partition_mode, name=fault_id)
        details = {"grudge": params["topology"]["grudge"], "mode": ctx.partition_mode}
        return ActiveFault(fault_id, self.name, f"partition ({ctx.partition_mode}) {topology.description}",
                           details, undo=fault_id)

    def stop(self, ctx: FaultContext, active: ActiveFault) -> str:
        with ctx.lock:
            ctx.cluster.mesh.end_partition(active.undo)
        return "partition healed"


class LinkFaultKind:
    """A Toxiproxy toxic on both streams of all links (or of the links touching chosen nodes)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"attributes": toxic_attributes(self.name, options), "stream": "both"}
        if arg not in (None, "all"):
            params.update(plan_targets(arg, nodes, rng, self.name))
        return params

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault:
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
            fault = mesh.add_link_fault(self.name, params["attributes"], links, params["stream"])
        details["links"] = list(fault.links)
        summary = f"{self.name} {_attributes(params['attributes'])} on {where}"
        return ActiveFault(fault_id, self.name, summary, details, undo=fault)

    def stop(self, ctx: FaultContext, active: ActiveFault) -> str:
        fault: LinkFault = active.undo
        with ctx.lock:
            ctx.cluster.mesh.remove_link_fault(fault)
        return f"{self.name} removed"


@dataclass(frozen=True)
class ProcessFaultKind:
    """A process fault through the backend: `act` the targets in state `acts_on` at start, and
    `undo` those still in state `undone_from` at stop (kill/restart, pause/resume)."""

    name: str
    acts_on: tuple[str, ...]
    act: str
    undone_from: str
    undo: str
    undone: str
    skipped: str

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        return plan_targets(arg, nodes, rng, self.name)

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault:
        nodes, extra = resolve_targets(ctx, params)
        backend = ctx.cluster.backend
        with ctx.lock:
            hit = [n for n in nodes if backend.state(n) in self.acts_on]
            for node in hit:
                getattr(backend, self.act)(node)
        details = {"nodes": hit, "target": params["target"], **extra}
        if len(hit) < len(nodes):
            details[self.skipped] = [n for n in nodes if n not in hit]
        return ActiveFault(fault_id, self.name, f"{self.name} {','.join(hit) or 'nobody'}", details, undo=hit)

    def stop(self, ctx: FaultContext, active: ActiveFault) -> str:
        backend = ctx.cluster.backend
        with ctx.lock:
            done = [n for n in active.undo if backend.state(n) == self.undone_from]
            for node in done:
                getattr(backend, self.undo)(node)
        return f"{self.undone} " + (",".join(done) or "nobody")


KILL = ProcessFaultKind("kill", acts_on=(RUNNING, PAUSED), act="kill", undone_from=DEAD, undo="restart",
                        undone="restarted", skipped="already_dead")
PAUSE = ProcessFaultKind("pause", acts_on=(RUNNING,), act="pause", undone_from=PAUSED, undo="resume",
                         undone="resumed", skipped="not_running")


class RollingRestartKind:
    """Restart every node in a planned order, waiting (bounded) for each to name a leader again."""

    name = "rolling-restart"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        if arg is not None:
            raise FaultbedError("rolling-restart takes no argument")
        order = list(nodes)
        rng.shuffle(order)
        return {"order": order}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault:
        order = list(params["order"])
        progress: dict[str, list[str]] = {"restarted": [], "not_ready": []}
        return ActiveFault(fault_id, self.name, f"rolling restart {','.join(order)}", {"order": order},
                           undo=progress)

    def run(self, ctx: FaultContext, active: ActiveFault) -> None:
        """The restarts themselves, after the start is recorded: one `restart` event per node."""
        progress: dict[str, list[str]] = active.undo
        for node in active.details["order"]:
            if ctx.stop.is_set():
                break
            with ctx.lock:
                ctx.cluster.backend.restart(node)
            progress["restarted"].append(node)
            ctx.record(active, "restart", f"restarted {node}", nodes=[node])
            if _wait_rejoined(ctx, node) is False:
                progress["not_ready"].append(node)

    def stop(self, ctx: FaultContext, active: ActiveFault) -> str:
        progress: dict[str, list[str]] = active.undo
        summary = "rolling restart over: restarted " + (",".join(progress["restarted"]) or "nobody")
        if progress["not_ready"]:
            summary += "; did not rejoin in time: " + ",".join(progress["not_ready"])
        return summary


def _wait_rejoined(ctx: FaultContext, node: str) -> bool | None:
    """Wait until `node` answers and names a leader: True, False at the deadline, None when asked to stop."""
    deadline = time.monotonic() + ctx.ready_timeout
    while time.monotonic() < deadline:
        if ctx.stop.is_set():
            return None
        try:
            ctx.cluster.wait_ready(min(1.0, max(0.1, deadline - time.monotonic())), nodes=[node])
            return True
        except SetupError:
            continue
    log.warning("%s did not rejoin within %.0fs", node, ctx.ready_timeout)
    return False


def _attributes(attributes: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in attributes.items())


KINDS: dict[str, FaultKind] = {
    "partition": PartitionKind(),
    **{name: LinkFaultKind(name) for name in LINK_TOXICS},
    "kill": KILL,
    "pause": PAUSE,
    "rolling-restart": RollingRestartKind(),
}

__all__ = ["FAULT_KINDS", "KINDS", "TARGETS", "ActiveFault", "FaultContext", "FaultEntry", "NemesisCluster",
           "parse_fault", "validate_entries", "topology_names"]
