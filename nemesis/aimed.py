"""Aimed faults: fired at a moment the run itself shows, seen live from the history.

Each aimed kind arms at its scheduled start, watches the history (HistoryWriter.watch) for
the event it aims at, and acts a chosen delay after it:

- `kill-after-ack:DELAY_MS` (default 50): SIGKILL the primary DELAY_MS after the next
  acknowledged write: an acknowledged write may not be replicated yet.
- `kill-in-flight:DELAY_MS` (default 0): SIGKILL the node a client's write was just sent
  to, DELAY_MS after its invocation, while it is still pending: the write may commit
  but its answer is lost, and the client retries it elsewhere.
- `isolate-in-flight:DELAY_MS` (default 0): cut that node off from every peer instead:
  a forwarded write commits without it and its client times out.
- `latency-on-retry:MS` (default 500): when a client retries a write (attempt 2 or
  later: an earlier attempt's fate is unknown), put MS of latency on every link of the
  primary until the fault stops: commits slower than the client's timeout.

schedule.json holds what each aims at (`after`, `delay_ms`, `target`), so a replay arms
and aims it the same way; the start event records what it fired on (`aimed_at`: the
event's index, time, operation, process and node) and when (`fired_ns`, `late_ms`; for
the in-flight kinds also `pending_ns`, when the request was seen still unanswered).
An aim not seen within ARM_TIMEOUT is a fault not applied (the schedule goes on).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable, Sequence, TypeVar

from faultbed.cluster.backend import RUNNING
from faultbed.cluster.mesh import LinkFault
from faultbed.errors import FaultbedError
from faultbed.nemesis.kinds import ActiveFault, FaultContext, FaultKindBase, Healed
from faultbed.nemesis.process import KILL
from faultbed.nemesis.targets import PRIMARY

log = logging.getLogger(__name__)

MAX_DELAY_MS = 10_000
ARM_TIMEOUT = 10.0   # seconds an armed fault waits for its aim before giving up (not applied)
READS = frozenset({"read", "final-read", "poll", "read-ledger", "consume", "depth"})
AIMED_FIELDS = ("index", "time", "type", "f", "key", "node", "process", "attempt")
REQUEST_NODE = "request-node"   # target: the node the aimed-at request was sent to

Event = dict[str, Any]
State = TypeVar("State")


def is_client(event: Event) -> bool:
    """An event of a client process of the main phase (not the nemesis, not the final reads)."""
    process = event.get("process")
    return isinstance(process, int) and process < 1_000_000


def is_ack(event: Event) -> bool:
    """A client's write acknowledged: an `ok` from a client process of the main phase, not a read."""
    return event.get("type") == "ok" and is_client(event) and str(event.get("f")) not in READS


def is_write_sent(event: Event) -> bool:
    """A client's write invoked on a known node (the request is about to leave)."""
    return (event.get("type") == "invoke" and is_client(event) and str(event.get("f")) not in READS
            and isinstance(event.get("node"), str))


def is_retry_sent(event: Event) -> bool:
    """A write sent again: attempt 2 or later, after an attempt whose fate the client does not know."""
    attempt = event.get("attempt")
    return is_write_sent(event) and isinstance(attempt, int) and attempt >= 2


class Sight:
    """The first event matching `aim` appended after arming, and the completion of its
    operation if one comes later (same process, not an invoke). Thread-safe: the history
    calls `see` from every appending thread."""

    def __init__(self, history: Any, aim: Callable[[Event], bool]) -> None:
        self.aim = aim
        self.event: Event | None = None
        self.completion: Event | None = None
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self._unwatch = history.watch(self.see)

    def see(self, event: Event) -> None:
        with self._lock:
            if self.event is None:
                if self.aim(event):
                    self.event = event
                    self.arrived.set()
            elif (self.completion is None and event.get("process") == self.event.get("process")
                  and event.get("type") != "invoke"):
                self.completion = event

    def wait(self, stop: threading.Event, deadline: float, what: str) -> Event:
        while not self.arrived.wait(0.02):
            if stop.is_set():
                raise FaultbedError("the run ended before the aim was seen")
            if time.monotonic() > deadline:
                raise FaultbedError(f"no {what} within {ARM_TIMEOUT:g}s of arming")
        assert self.event is not None
        return self.event

    def close(self) -> None:
        self._unwatch()


def parse_delay(kind: str, arg: str | None, default: int, unit: str = "delay") -> int:
    """Whole milliseconds in 0..MAX_DELAY_MS from `KIND:ARG` (default when no ARG)."""
    try:
        delay = int(arg) if arg is not None else default
    except ValueError:
        raise FaultbedError(f"{kind}:{arg}: the {unit} is whole milliseconds ({kind}:{default})") from None
    if not 0 <= delay <= MAX_DELAY_MS:
        raise FaultbedError(f"{kind}:{arg}: the {unit} must be 0..{MAX_DELAY_MS} ms")
    return delay


def wait_until(ctx: FaultContext, history: Any, at_ns: int) -> None:
    """Sleep until the history's clock reads `at_ns` (FaultbedError when the run ends first)."""
    wait = (at_ns - history.now()) / 1e9
    if wait > 0 and ctx.stop.wait(wait):
        raise FaultbedError("the run ended before the aimed moment")


def history_of(ctx: FaultContext, kind: str) -> Any:
    if ctx.history is None:
        raise FaultbedError(f"{kind} needs the run's history to aim (none here)")
    return ctx.history


def aimed_details(event: Event, fired_ns: int, delay_ms: int) -> dict[str, Any]:
    """What the start event records: the event aimed at, when the fault fired, how late."""
    return {"aimed_at": {k: event.get(k) for k in AIMED_FIELDS if k in event}, "delay_ms": delay_ms,
            "fired_ns": fired_ns, "late_ms": round((fired_ns - event["time"] - delay_ms * 1_000_000) / 1e6, 3)}


def in_flight(ctx: FaultContext, history: Any, delay_ms: int, kind: str) -> tuple[Event, str, int]:
    """The next write sent to a running node that is still pending `delay_ms` after it was sent;
    returns it, its node and when it was seen pending (ns), at that moment. A write answered
    sooner is passed over for the next."""
    deadline = time.monotonic() + ARM_TIMEOUT
    while True:
        sight = Sight(history, is_write_sent)
        try:
            sent = sight.wait(ctx.stop, deadline, "write sent")
            wait_until(ctx, history, sent["time"] + delay_ms * 1_000_000)
            node = str(sent["node"])
            pending_ns = history.now()
            if sight.completion is None and ctx.cluster.backend.state(node) == RUNNING:
                return sent, node, pending_ns
        finally:
            sight.close()
        if time.monotonic() > deadline:
            raise FaultbedError(f"{kind}: no write still pending {delay_ms} ms after it was sent, "
                                f"within {ARM_TIMEOUT:g}s of arming")


class KillAfterAckKind(FaultKindBase[tuple[str, ...]]):
    """SIGKILL the primary DELAY_MS after the next acknowledged write; restart it at stop."""

    name = "kill-after-ack"
    description = "SIGKILL the primary DELAY_MS after a write is acknowledged (kill-after-ack:DELAY_MS, default 50)"
    color = "#ffb37a"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        return {"target": PRIMARY, "after": "ack", "delay_ms": parse_delay(self.name, arg, 50),
                "fallback": rng.choice(list(nodes))}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[tuple[str, ...]]:
        history = history_of(ctx, self.name)
        node = ctx.cluster.leader() or params["fallback"]  # asked before arming: the kill must not wait for it
        sight = Sight(history, is_ack)
        try:
            ack = sight.wait(ctx.stop, time.monotonic() + ARM_TIMEOUT, "write acknowledged")
        finally:
            sight.close()
        wait_until(ctx, history, ack["time"] + int(params["delay_ms"]) * 1_000_000)
        hit = kill_now(ctx, node)
        details = {"nodes": list(hit), "target": PRIMARY, "leader": node,
                   **aimed_details(ack, history.now(), int(params["delay_ms"]))}
        summary = f"kill {','.join(hit) or 'nobody'} {params['delay_ms']}ms after ack #{ack['index']}"
        return ActiveFault(fault_id, self.name, summary, details, state=hit)

    def stop(self, ctx: FaultContext, active: ActiveFault[tuple[str, ...]]) -> str:
        return KILL.stop(ctx, active)

    def heal(self, ctx: FaultContext) -> Healed:
        return KILL.heal(ctx)


def kill_now(ctx: FaultContext, node: str) -> tuple[str, ...]:
    """SIGKILL `node` if it can be killed; the nodes hit."""
    backend = ctx.cluster.backend
    with ctx.lock:
        hit = (node,) if backend.state(node) in KILL.acts_on else ()
        for target in hit:
            KILL.act(backend, target)
    return hit


class InFlightKind(FaultKindBase[State]):
    """Aimed at the node a client's write was sent to, DELAY_MS after it, while it is unanswered;
    a kind says what it does to that node in `hit` (its state, details, and the verb for the summary)."""

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        return {"target": REQUEST_NODE, "after": "write-sent", "delay_ms": parse_delay(self.name, arg, 0)}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[State]:
        history = history_of(ctx, self.name)
        delay = int(params["delay_ms"])
        sent, node, pending_ns = in_flight(ctx, history, delay, self.name)
        state, details, verb = self.hit(ctx, fault_id, node)
        details.update(target=REQUEST_NODE, pending_ns=pending_ns, **aimed_details(sent, history.now(), delay))
        summary = f"{verb} {delay}ms after {sent['f']} #{sent['index']} was sent to it"
        return ActiveFault(fault_id, self.name, summary, details, state=state)

    def hit(self, ctx: FaultContext, fault_id: str, node: str) -> tuple[State, dict[str, Any], str]:
        raise NotImplementedError


class KillInFlightKind(InFlightKind[tuple[str, ...]]):
    """SIGKILL the node a pending write was sent to, DELAY_MS after it was sent; restart it at stop."""

    name = "kill-in-flight"
    description = ("SIGKILL the node a client's write was just sent to, DELAY_MS after it (still pending): "
                   "its answer is lost (kill-in-flight:DELAY_MS, default 0)")
    color = "#ff9f6b"

    def hit(self, ctx: FaultContext, fault_id: str, node: str) -> tuple[tuple[str, ...], dict[str, Any], str]:
        hit = kill_now(ctx, node)
        return hit, {"nodes": list(hit)}, f"kill {','.join(hit) or 'nobody'}"

    def stop(self, ctx: FaultContext, active: ActiveFault[tuple[str, ...]]) -> str:
        return KILL.stop(ctx, active)

    def heal(self, ctx: FaultContext) -> Healed:
        return KILL.heal(ctx)


class IsolateInFlightKind(InFlightKind[str]):
    """Cut the node a pending write was sent to off from every peer, DELAY_MS after it was sent."""

    name = "isolate-in-flight"
    description = ("cut the node a client's write was just sent to off from its peers, DELAY_MS after it "
                   "(still pending) (isolate-in-flight:DELAY_MS, default 0)")
    color = "#e59af5"

    def hit(self, ctx: FaultContext, fault_id: str, node: str) -> tuple[str, dict[str, Any], str]:
        grudge = isolating(node, ctx.cluster.nodes)
        with ctx.lock:
            ctx.cluster.mesh.partition(grudge, ctx.partition_mode, name=fault_id)
        details = {"nodes": [node], "grudge": {k: sorted(v) for k, v in grudge.items()}, "mode": ctx.partition_mode}
        return fault_id, details, f"isolate {node}"

    def stop(self, ctx: FaultContext, active: ActiveFault[str]) -> str:
        with ctx.lock:
            ctx.cluster.mesh.end_partition(active.state)
        return "isolation healed"


def isolating(node: str, nodes: Sequence[str]) -> dict[str, list[str]]:
    """The grudge that cuts `node` off: it drops every peer's traffic and every peer drops its."""
    others = [n for n in nodes if n != node]
    return {node: others, **{other: [node] for other in others}}


class LatencyOnRetryKind(FaultKindBase[LinkFault]):
    """When a client retries a write, MS of latency on every link of the primary until stop."""

    name = "latency-on-retry"
    description = ("when a client retries a write, MS latency on every link of the primary until the fault "
                   "stops (latency-on-retry:MS, default 500)")
    color = "#9fd3ff"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        return {"target": PRIMARY, "after": "retry-sent", "delay_ms": 0,
                "latency_ms": parse_delay(self.name, arg, 500, unit="latency"), "fallback": rng.choice(list(nodes))}

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[LinkFault]:
        history = history_of(ctx, self.name)
        sight = Sight(history, is_retry_sent)
        try:
            retry = sight.wait(ctx.stop, time.monotonic() + ARM_TIMEOUT, "write retried")
        finally:
            sight.close()
        leader = ctx.cluster.leader() or params["fallback"]
        mesh = ctx.cluster.mesh
        attributes = {"latency": int(params["latency_ms"]), "jitter": 0}
        with ctx.lock:
            fault = mesh.add_link_fault(self.name, attributes, mesh.links_touching([leader]), "both", "latency")
        details = {"nodes": [leader], "target": PRIMARY, "leader": leader, "attributes": attributes,
                   "links": list(fault.links), **aimed_details(retry, history.now(), 0)}
        summary = f"latency {attributes['latency']}ms on the links of {leader} (retry #{retry['index']})"
        return ActiveFault(fault_id, self.name, summary, details, state=fault)

    def stop(self, ctx: FaultContext, active: ActiveFault[LinkFault]) -> str:
        with ctx.lock:
            ctx.cluster.mesh.remove_link_fault(active.state)
        return f"{self.name} removed"


KILL_AFTER_ACK = KillAfterAckKind()
KILL_IN_FLIGHT = KillInFlightKind()
ISOLATE_IN_FLIGHT = IsolateInFlightKind()
LATENCY_ON_RETRY = LatencyOnRetryKind()
