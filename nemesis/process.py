"""Process fault kinds: kill/restart, pause/resume, and rolling restarts, through the backend.

Each heals what it leaves behind: kill restarts dead nodes, pause resumes paused
ones, a rolling restart restarts a node its restart left dead.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from faultbed.cluster.backend import DEAD, PAUSED, RUNNING, ProcessControl
from faultbed.errors import FaultbedError, SetupError
from faultbed.nemesis.kinds import ActiveFault, Alias, FaultContext, FaultKindBase, Healed, heal_nodes
from faultbed.nemesis.targets import PRIMARY, plan_targets, resolve_targets

log = logging.getLogger(__name__)

Verb = Callable[[ProcessControl, str], None]


def _kill(backend: ProcessControl, node: str) -> None:
    backend.kill(node)


def _restart(backend: ProcessControl, node: str) -> None:
    backend.restart(node)


def _pause(backend: ProcessControl, node: str) -> None:
    backend.pause(node)


def _resume(backend: ProcessControl, node: str) -> None:
    backend.resume(node)


@dataclass(frozen=True)
class ProcessKind(FaultKindBase[tuple[str, ...]]):
    """At start, `act` on the targets in a state of `acts_on`; at stop (and at heal), `undo`
    those still in state `undone_from` (kill/restart, pause/resume). Its state: the nodes hit."""

    name: str
    description: str
    acts_on: tuple[str, ...]
    act: Verb
    undone_from: str
    undo: Verb
    undone: str                  # what the stop says it did: "restarted"
    skipped: str                 # the detail listing targets not acted on: "already_dead"
    color: str
    aliases: tuple[Alias, ...] = field(default=())

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        return plan_targets(arg, nodes, rng, self.name)

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[tuple[str, ...]]:
        nodes, extra = resolve_targets(ctx, params)
        backend = ctx.cluster.backend
        with ctx.lock:
            hit = tuple(n for n in nodes if backend.state(n) in self.acts_on)
            for node in hit:
                self.act(backend, node)
        details = {"nodes": list(hit), "target": params["target"], **extra}
        if len(hit) < len(nodes):
            details[self.skipped] = [n for n in nodes if n not in hit]
        return ActiveFault(fault_id, self.name, f"{self.name} {','.join(hit) or 'nobody'}", details, state=hit)

    def stop(self, ctx: FaultContext, active: ActiveFault[tuple[str, ...]]) -> str:
        backend = ctx.cluster.backend
        with ctx.lock:
            done = [n for n in active.state if backend.state(n) == self.undone_from]
            for node in done:
                self.undo(backend, node)
        return f"{self.undone} " + (",".join(done) or "nobody")

    def heal(self, ctx: FaultContext) -> Healed:
        return heal_nodes(ctx, self.undone_from, self.undone, self.undo)


KILL = ProcessKind("kill", "SIGKILL one node (kill:TARGET), restart it at stop", acts_on=(RUNNING, PAUSED),
                   act=_kill, undone_from=DEAD, undo=_restart, undone="restarted", skipped="already_dead",
                   color="#ffcf91",
                   aliases=(Alias("kill-primary", PRIMARY, "SIGKILL the current leader, restart it at stop"),))
PAUSE = ProcessKind("pause", "SIGSTOP one node (pause:TARGET), SIGCONT at stop", acts_on=(RUNNING,),
                    act=_pause, undone_from=PAUSED, undo=_resume, undone="resumed", skipped="not_running",
                    color="#ffe591",
                    aliases=(Alias("pause-primary", PRIMARY, "SIGSTOP the current leader, SIGCONT at stop"),))


@dataclass
class RollingProgress:
    """What a rolling restart has done so far (its state while it runs)."""

    order: tuple[str, ...]
    restarted: list[str] = field(default_factory=list)
    not_ready: list[str] = field(default_factory=list)


class RollingRestartKind(FaultKindBase[RollingProgress]):
    """Restart every node in a planned order, waiting (bounded) for each to name a leader again."""

    name = "rolling-restart"
    description = "restart every node in turn, waiting for each to rejoin"
    color = "#ffd8b1"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        if arg is not None:
            raise FaultbedError("rolling-restart takes no argument")
        order = list(nodes)
        rng.shuffle(order)
        return {"order": order}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[RollingProgress]:
        order = tuple(params["order"])
        return ActiveFault(fault_id, self.name, f"rolling restart {','.join(order)}", {"order": list(order)},
                           state=RollingProgress(order))

    def run(self, ctx: FaultContext, active: ActiveFault[RollingProgress]) -> None:
        """The restarts themselves, after the start is recorded: one `restart` event per node."""
        progress = active.state
        for node in progress.order:
            if ctx.stop.is_set():
                break
            with ctx.lock:
                ctx.cluster.backend.restart(node)
            progress.restarted.append(node)
            ctx.record(active, "restart", f"restarted {node}", nodes=[node])
            if _wait_rejoined(ctx, node) is False:
                progress.not_ready.append(node)

    def stop(self, ctx: FaultContext, active: ActiveFault[RollingProgress]) -> str:
        progress = active.state
        summary = "rolling restart over: restarted " + (",".join(progress.restarted) or "nobody")
        if progress.not_ready:
            summary += "; did not rejoin in time: " + ",".join(progress.not_ready)
        return summary

    def heal(self, ctx: FaultContext) -> Healed:
        """A restart that failed half-way leaves its node dead: start it again."""
        return heal_nodes(ctx, DEAD, "restarted", _restart)


ROLLING_RESTART = RollingRestartKind()


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
