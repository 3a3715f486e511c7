"""Aimed faults: fired at a moment the run itself shows, seen live from the history.

`kill-after-ack:DELAY_MS` arms at its scheduled start, waits for the next write a client
sees acknowledged (an `ok` that is not a read), and SIGKILLs the primary DELAY_MS after
that acknowledgement (default 50): the moment when an acknowledged write may not be
replicated yet. schedule.json holds what it aims at (trigger, delay, target), so a replay
arms and aims it the same way; the start event records what it fired on (`aimed_at`: the
acknowledgement's index, time, operation and node) and when (`fired_ns`, `late_ms`). Its
stop restarts the node, like kill.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Sequence

from faultbed.errors import FaultbedError
from faultbed.nemesis.kinds import ActiveFault, FaultContext, FaultKindBase, Healed
from faultbed.nemesis.process import KILL
from faultbed.nemesis.targets import PRIMARY

log = logging.getLogger(__name__)

DEFAULT_DELAY_MS = 50
MAX_DELAY_MS = 10_000
ARM_TIMEOUT = 10.0   # seconds an armed fault waits for an acknowledgement before giving up (not applied)
READS = frozenset({"read", "final-read", "poll"})


def is_ack(event: dict[str, Any]) -> bool:
    """A client's write acknowledged: an `ok` from a client process of the main phase, not a read."""
    return (event.get("type") == "ok" and isinstance(event.get("process"), int)
            and str(event.get("f")) not in READS)


class KillAfterAckKind(FaultKindBase[tuple[str, ...]]):
    """SIGKILL the primary DELAY_MS after the next acknowledged write; restart it at stop."""

    name = "kill-after-ack"
    description = "SIGKILL the primary DELAY_MS after a write is acknowledged (kill-after-ack:DELAY_MS, default 50)"
    color = "#ffb37a"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        try:
            delay = int(arg) if arg is not None else DEFAULT_DELAY_MS
        except ValueError:
            raise FaultbedError(f"kill-after-ack:{arg}: the delay is whole milliseconds (kill-after-ack:50)") from None
        if not 0 <= delay <= MAX_DELAY_MS:
            raise FaultbedError(f"kill-after-ack:{arg}: the delay must be 0..{MAX_DELAY_MS} ms")
        return {"target": PRIMARY, "after": "ack", "delay_ms": delay, "fallback": rng.choice(list(nodes))}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[tuple[str, ...]]:
        history = ctx.history
        if history is None:
            raise FaultbedError("kill-after-ack needs the run's history to aim (none here)")
        node = ctx.cluster.leader() or params["fallback"]  # asked before arming: the kill must not wait for it
        ack = _next_ack(history, ctx.stop)
        delay_ns = int(params["delay_ms"]) * 1_000_000
        wait = (ack["time"] + delay_ns - history.now()) / 1e9
        if wait > 0 and ctx.stop.wait(wait):
            raise FaultbedError("the run ended before the aimed moment")
        backend = ctx.cluster.backend
        with ctx.lock:
            hit = (node,) if backend.state(node) in KILL.acts_on else ()
            for target in hit:
                KILL.act(backend, target)
        fired = history.now()
        details = {"nodes": list(hit), "target": PRIMARY, "leader": node, "delay_ms": params["delay_ms"],
                   "aimed_at": {k: ack.get(k) for k in ("index", "time", "f", "key", "node", "process")},
                   "fired_ns": fired, "late_ms": round((fired - ack["time"] - delay_ns) / 1e6, 3)}
        summary = f"kill {','.join(hit) or 'nobody'} {params['delay_ms']}ms after ack #{ack['index']}"
        return ActiveFault(fault_id, self.name, summary, details, state=hit)

    def stop(self, ctx: FaultContext, active: ActiveFault[tuple[str, ...]]) -> str:
        return KILL.stop(ctx, active)

    def heal(self, ctx: FaultContext) -> Healed:
        return KILL.heal(ctx)


def _next_ack(history: Any, stop: threading.Event) -> dict[str, Any]:
    """The first acknowledged write appended after this call (FaultbedError after ARM_TIMEOUT)."""
    seen: list[dict[str, Any]] = []
    arrived = threading.Event()

    def watch(event: dict[str, Any]) -> None:
        if not seen and is_ack(event):
            seen.append(event)
            arrived.set()

    unwatch = history.watch(watch)
    try:
        deadline = time.monotonic() + ARM_TIMEOUT
        while not arrived.wait(0.05):
            if stop.is_set() or time.monotonic() > deadline:
                raise FaultbedError(f"no write acknowledged within {ARM_TIMEOUT:g}s of arming")
    finally:
        unwatch()
    return seen[0]


KILL_AFTER_ACK = KillAfterAckKind()
