"""What a fault kind is: one value that carries everything about one kind of fault.

Like a Jepsen nemesis package, a `FaultKind` holds its name, a line of help, its
aliases, its colour on every page, and its behaviour: `plan` (at schedule time, from
the schedule's seeded random), `start`, `run` (the work of a long fault, after its
start is recorded), `stop`, and `heal` (undo whatever of this kind is still in effect,
after a crash or at the end of the main phase). Built-in kinds are registered in the
entry point group `faultbed.faults` like anyone else's; `FaultKindBase` gives the
defaults a kind may keep (no aliases, nothing to run, nothing to heal).
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Protocol, Sequence, TypeVar

from faultbed.cluster.backend import ProcessControl
from faultbed.cluster.systems import System
from faultbed.cluster.mesh import BLACKHOLE, Mesh

log = logging.getLogger(__name__)

DEFAULT_COLOR = "#c7e9ff"

State = TypeVar("State")
Healed = dict[str, list[str]]  # what a heal did, by verb: {"restarted": ["n2"], "failed": []}


class NemesisCluster(Protocol):
    """What the nemesis needs of a cluster (cluster.running.RunningCluster has it)."""

    @property
    def nodes(self) -> list[str]: ...
    @property
    def backend(self) -> ProcessControl: ...
    @property
    def mesh(self) -> Mesh: ...
    @property
    def system(self) -> System: ...


    def leader(self, timeout: float = 1.0) -> str | None: ...
    def wait_ready(self, timeout: float, nodes: list[str] | None = None) -> str | None: ...


@dataclass(frozen=True)
class Alias:
    """A shorter name for `KIND:ARG`, e.g. partition-ring for partition:majorities-ring."""

    name: str
    arg: str | None
    description: str


@dataclass(frozen=True)
class FaultContext:
    """Where faults act: the cluster, the partition mode, a stop signal for long actions.

    `lock` serializes actions on the backend and mesh (fault kinds run on their own threads);
    `record(active, f, value, **extra)` writes a progress event of a long fault to the history;
    `history` is the run's HistoryWriter (aimed faults watch it live), None outside a run.
    """

    cluster: NemesisCluster
    partition_mode: str = BLACKHOLE
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)
    ready_timeout: float = 30.0
    record: Callable[..., None] = field(default=lambda active, f, value, **extra: None)
    history: Any = None


@dataclass
class ActiveFault(Generic[State]):
    """A fault that has started: how to say it, what to record, and its kind's own `state`
    (what its stop undoes: a partition's name, a LinkFault, the nodes hit, a progress record)."""

    id: str
    kind: str
    summary: str
    details: dict[str, Any]
    state: State


class FaultKind(Protocol[State]):
    """One kind of fault (see the module docstring): 4 data members and 5 verbs."""

    name: str
    description: str             # one line: `faultbed list`, `faultbed run --help`
    aliases: tuple[Alias, ...]
    color: str                   # its shade in report.html and the porcupine annotations

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]: ...
    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[State]: ...
    def run(self, ctx: FaultContext, active: ActiveFault[State]) -> None: ...
    def stop(self, ctx: FaultContext, active: ActiveFault[State]) -> str: ...
    def heal(self, ctx: FaultContext) -> Healed: ...


class FaultKindBase(Generic[State]):
    """Defaults for a fault kind: no aliases, the default colour, nothing to run or heal."""

    name: str
    description: str
    aliases: tuple[Alias, ...] = ()
    color: str = DEFAULT_COLOR

    def run(self, ctx: FaultContext, active: ActiveFault[State]) -> None:
        """Nothing: the fault does all its work in `start`."""

    def heal(self, ctx: FaultContext) -> Healed:
        """Nothing: stopping every active fault of this kind undoes it."""
        return {}


def heal_nodes(ctx: FaultContext, in_state: str, verb: str, act: Callable[[ProcessControl, str], None]) -> Healed:
    """`act` on every node in `in_state`; listed under `verb`, or under `failed` when it raises."""
    done: Healed = {verb: [], "failed": []}
    backend = ctx.cluster.backend
    for node in ctx.cluster.nodes:
        try:
            if backend.state(node) == in_state:
                act(backend, node)
                done[verb].append(node)
        except Exception as exc:
            log.error("healing %s failed: %s", node, exc)
            done["failed"].append(node)
    return done
