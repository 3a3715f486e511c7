"""The test as one frozen value: everything a run needs to be repeated."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from faultbed.errors import FaultbedError


@dataclass(frozen=True)
class TestSpec:
    """A test: system, backend, workload, faults, rates and the seed everything derives from."""

    __test__ = False  # not a pytest test class

    system: str = "raftkv"
    backend: str = "local"
    nodes: int = 5
    workload: str = "register"
    nemesis: tuple[str, ...] = ("partition",)
    nemesis_interval: float = 10.0
    partition_mode: str = "blackhole"
    time_limit: float = 30.0
    rate: float = 100.0
    concurrency: int = 10
    keys: int = 8
    op_timeout: float = 1.0
    seed: int = 0
    bugs: tuple[str, ...] = ()
    store: str = "store"
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["nemesis"] = list(self.nemesis)
        data["bugs"] = list(self.bugs)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TestSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FaultbedError(f"spec: unknown field(s) {sorted(unknown)}")
        values = dict(data)
        for name in ("nemesis", "bugs"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def replace(self, **changes: Any) -> "TestSpec":
        return dataclasses.replace(self, **changes)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


class Limit:
    """The documented range of a numeric field: low..high, low itself excluded when `above`.
    (A plain class: a dataclass costs half a millisecond to make at every start, and every
    command that reads a spec imports this module.)"""

    __slots__ = ("low", "high", "above", "integer")

    def __init__(self, low: float, high: float, above: bool = False, integer: bool = False) -> None:
        self.low, self.high, self.above, self.integer = low, high, above, integer

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        low, high = (str(int(self.low)), str(int(self.high))) if self.integer else (f"{self.low:g}", f"{self.high:g}")
        return f"{kind} {'>' if self.above else '>='} {low} and <= {high}"

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.integer and isinstance(value, float)):
            return False
        if not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high


# Every numeric field, within a range where a run makes sense and ends (shown in `faultbed run --help`).
LIMITS: dict[str, Limit] = {
    "nodes": Limit(1, 25, integer=True),
    "concurrency": Limit(1, 1000, integer=True),
    "keys": Limit(1, 1000, integer=True),  # final reads visit every key on every node
    "rate": Limit(0, 10_000),  # 0: as fast as the clients go
    "time_limit": Limit(0, 86_400, above=True),
    "nemesis_interval": Limit(0, 86_400, above=True),
    "op_timeout": Limit(0, 600, above=True),
    "seed": Limit(-2**63, 2**63 - 1, integer=True),
}
OPTION_LIMITS: dict[str, Limit] = {
    "check_timeout": Limit(0, 86_400, above=True),
    "diskfs_writeback": Limit(0, 86_400),
}
OPTION_FLAGS = {"diskfs_writeback": "--disk-writeback"}
MAX_PLANNED_OPS = 5_000_000  # the operation plan (about rate x time limit) is written before the run
MAX_FAULTS = 100_000  # the schedule (about time limit / nemesis interval per fault) is written before the run


def flag(name: str) -> str:
    """The command-line flag of a spec field: time_limit -> --time-limit."""
    return "--" + name.replace("_", "-")


def check_limits(spec: TestSpec) -> None:
    """Every numeric field finite and within LIMITS; FaultbedError naming the flag otherwise."""
    for name, limit in LIMITS.items():
        value = getattr(spec, name)
        if not limit.admits(value):
            raise FaultbedError(f"{flag(name)} must be {limit.describe()}, not {str(value)[:40]}")
    if spec.rate * spec.time_limit > MAX_PLANNED_OPS:
        raise FaultbedError(f"--rate x --time-limit must be at most {MAX_PLANNED_OPS:,} operations "
                            f"(the plan is written before the run), not {spec.rate * spec.time_limit:,.0f}")
    if spec.time_limit / spec.nemesis_interval > MAX_FAULTS:
        raise FaultbedError(f"--time-limit / --nemesis-interval must be at most {MAX_FAULTS:,} "
                            f"(every fault is scheduled before the run)")
    options = spec.options if isinstance(spec.options, dict) else {}
    for name, limit in OPTION_LIMITS.items():
        value = options.get(name)
        if value is not None and not limit.admits(value):
            flag_name = OPTION_FLAGS.get(name, f"option {name}")
            raise FaultbedError(f"{flag_name} must be {limit.describe()} (seconds), not {str(value)[:40]}")
