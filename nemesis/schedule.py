"""Seeded fault schedules as data: generate, write (schedule.json), read, and replay.

For each nemesis entry of the spec, start and stop alternate about every
`nemesis_interval` seconds (each gap drawn within +-25%), entries staggered by
a fraction of the interval, everything within `time_limit`. Every random choice
(gaps, grudges, target nodes) comes from the entry's own stream,
`random.Random("faultbed-schedule:<seed>:<entry>")`, so adding an entry changes
only the stagger of the others, never their choices.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from faultbed.errors import FaultbedError
from faultbed.spec import TestSpec
from faultbed.nemesis.faults import FaultEntry, fault_kind, parse_fault, validate_entries

log = logging.getLogger(__name__)

SCHEDULE_VERSION = 1
JITTER = 0.25             # each gap is interval * uniform(1 - JITTER, 1 + JITTER)
MIN_FAULT_FRACTION = 0.25  # no start when less than this much of an interval is left
START, STOP = "start", "stop"

__all__ = ["FaultEvent", "Schedule", "generate_schedule", "validate_nemesis"]


@dataclass(frozen=True)
class FaultEvent:
    """At `at` seconds after the nemesis starts: start or stop fault `id` of entry `fault`."""

    at: float
    action: str
    fault: str
    id: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"at": self.at, "action": self.action, "fault": self.fault, "id": self.id}
        if self.action == START:
            data["params"] = self.params
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FaultEvent":
        return cls(at=float(data["at"]), action=str(data["action"]), fault=str(data["fault"]),
                   id=str(data["id"]), params=dict(data.get("params") or {}))


@dataclass(frozen=True)
class Schedule:
    """Every fault of a run, decided before it runs."""

    seed: int
    nodes: tuple[str, ...]
    partition_mode: str
    interval: float
    time_limit: float
    faults: tuple[str, ...]
    events: tuple[FaultEvent, ...]

    def entries(self) -> list[FaultEntry]:
        return [parse_fault(text) for text in self.faults]

    def events_of(self, fault: str) -> list[FaultEvent]:
        return [e for e in self.events if e.fault == fault]

    def to_json(self) -> dict[str, Any]:
        return {"version": SCHEDULE_VERSION, "seed": self.seed, "nodes": list(self.nodes),
                "partition_mode": self.partition_mode, "interval": self.interval,
                "time_limit": self.time_limit, "faults": list(self.faults),
                "events": [e.to_json() for e in self.events]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Schedule":
        """A schedule from its JSON form; FaultbedError when it is not one."""
        try:
            if data.get("version") != SCHEDULE_VERSION:
                raise FaultbedError(f"schedule version {data.get('version')!r} (expected {SCHEDULE_VERSION})")
            schedule = cls(seed=int(data["seed"]), nodes=tuple(map(str, data["nodes"])),
                           partition_mode=str(data["partition_mode"]), interval=float(data["interval"]),
                           time_limit=float(data["time_limit"]), faults=tuple(map(str, data["faults"])),
                           events=tuple(FaultEvent.from_json(e) for e in data["events"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FaultbedError(f"not a faultbed schedule: {exc!r}") from exc
        schedule.check()
        return schedule

    def check(self) -> None:
        """Every event names a known entry, every start has params and one later stop."""
        validate_entries(self.faults, self.nodes, self.partition_mode)
        starts: dict[str, FaultEvent] = {}
        for event in self.events:
            if event.fault not in self.faults or event.action not in (START, STOP):
                raise FaultbedError(f"schedule: bad event {event.to_json()}")
            if event.action == START:
                if event.id in starts:
                    raise FaultbedError(f"schedule: fault {event.id} starts twice")
                starts[event.id] = event
            elif event.id not in starts or starts[event.id].at > event.at:
                raise FaultbedError(f"schedule: fault {event.id} stops before it starts")


def validate_nemesis(spec: TestSpec, nodes: Sequence[str] | None = None) -> list[FaultEntry]:
    """Check spec.nemesis, partition_mode and interval before a run; FaultbedError with a clear message."""
    if spec.nemesis_interval <= 0:
        raise FaultbedError("--nemesis-interval must be positive")
    nodes = list(nodes) if nodes is not None else [f"n{i}" for i in range(1, spec.nodes + 1)]
    return validate_entries(spec.nemesis, nodes, spec.partition_mode, spec.options)


def generate_schedule(spec: TestSpec, nodes: Sequence[str], entries: Sequence[FaultEntry] | None = None) -> Schedule:
    """The schedule of `spec` over `nodes`: the same spec and nodes always give the same schedule.

    `entries`: spec.nemesis already parsed and validated (a RunPlan's faults); else done here.
    """
    entries = list(entries) if entries is not None else validate_nemesis(spec, nodes)
    events: list[FaultEvent] = []
    for position, entry in enumerate(entries):
        rng = random.Random(f"faultbed-schedule:{spec.seed}:{entry.text}")
        stagger = spec.nemesis_interval * (0.5 + position / len(entries))
        timeline = _timeline(entry, stagger, spec, nodes, rng)
        if not timeline:
            log.warning("nemesis %s never starts: time limit %.0fs is too short for interval %.0fs",
                        entry.text, spec.time_limit, spec.nemesis_interval)
        events.extend(timeline)
    order = {entry.text: i for i, entry in enumerate(entries)}
    events.sort(key=lambda e: (e.at, order[e.fault], e.action == START))
    return Schedule(seed=spec.seed, nodes=tuple(nodes), partition_mode=spec.partition_mode,
                    interval=spec.nemesis_interval, time_limit=spec.time_limit,
                    faults=tuple(e.text for e in entries), events=tuple(events))


def _timeline(entry: FaultEntry, first_start: float, spec: TestSpec, nodes: Sequence[str],
              rng: random.Random) -> list[FaultEvent]:
    interval, limit = spec.nemesis_interval, spec.time_limit
    kind = fault_kind(entry.kind)
    events: list[FaultEvent] = []
    at = first_start
    number = 1
    while at <= limit - interval * MIN_FAULT_FRACTION:
        stop_at = min(limit, at + interval * rng.uniform(1 - JITTER, 1 + JITTER))
        params = kind.plan(entry.arg, nodes, rng, spec.options)
        fault_id = f"{entry.text}#{number}"
        events.append(FaultEvent(_millis(at), START, entry.text, fault_id, params))
        events.append(FaultEvent(_millis(stop_at), STOP, entry.text, fault_id))
        at = stop_at + interval * rng.uniform(1 - JITTER, 1 + JITTER)
        number += 1
    return events


def _millis(seconds: float) -> float:
    """Rounded down to the millisecond: short in schedule.json, never past the time limit."""
    return math.floor(seconds * 1000) / 1000
