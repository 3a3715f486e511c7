"""The test as one frozen value: everything a run needs to be repeated."""

from __future__ import annotations

import dataclasses
import json
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


def load_spec(path: str) -> TestSpec:
    """Read spec.json written by a run."""
    try:
        with open(path, encoding="utf-8") as fh:
            return TestSpec.from_json(json.load(fh))
    except OSError as exc:
        raise FaultbedError(f"{path}: cannot read spec: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise FaultbedError(f"{path}: not a faultbed spec: {exc}") from exc
