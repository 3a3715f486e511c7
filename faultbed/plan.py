"""A spec resolved once into the objects a run is made of: system, workload, backend, faults, nodes.

`resolve(spec)` does every lookup in the plugin registry and every check a user's input needs,
before anything starts or is stored; the runner, `faultbed run` and the pytest plugin then
use the objects and never turn the spec's names into objects again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faultbed import plugins
from faultbed.cluster.systems import System, check_options, load_system, ready_timeout
from faultbed.cluster.systems.maelstrom import NAME as MAELSTROM, for_spec as maelstrom_for_spec
from faultbed.errors import FaultbedError
from faultbed.nemesis.disk import DiskControl
from faultbed.nemesis.faults import FaultEntry
from faultbed.nemesis.schedule import validate_nemesis
from faultbed.spec import TestSpec, check_limits
from faultbed.workloads import Workload, load_workload

READY_TIMEOUT = 30.0
DISK_KINDS = frozenset({"power-loss", "corrupt", "disk-error", "disk-slow"})


@dataclass(frozen=True)
class RunPlan:
    """What a spec names, as objects. `backend` is the backend class (constructed per run)."""

    spec: TestSpec
    system: System
    workload: Workload
    backend: Any
    faults: tuple[FaultEntry, ...]
    nodes: tuple[str, ...]

    @property
    def ready_timeout(self) -> float:
        """How long to wait for the cluster (and for a node to rejoin): the system's, at least ours."""
        return ready_timeout(self.system, READY_TIMEOUT)


def node_names(count: int) -> tuple[str, ...]:
    return tuple(f"n{i}" for i in range(1, count + 1))


def resolve(spec: TestSpec) -> RunPlan:
    """Every user-caused problem with a spec, as one FaultbedError, before anything starts."""
    check_limits(spec)  # finite and in range: NaN, infinity and absurd sizes never reach a run
    system = load_system(spec.system)
    workload = load_workload(spec.workload)
    if spec.system == MAELSTROM:  # `--bin PATH`: the user's program, and a client speaking the workload
        system = maelstrom_for_spec(spec, workload)
    backend = plugins.backend(spec.backend)
    backends = system.traits.backends
    if backends and spec.backend not in backends:
        raise FaultbedError(f"system {spec.system} runs on the {' or '.join(backends)} backend only "
                            f"(--backend {backends[0]})")
    if spec.workload not in system.workloads:
        raise FaultbedError(f"system {spec.system} does not run workload {spec.workload} "
                            f"(it runs: {', '.join(system.workloads)})")
    unknown = [b for b in spec.bugs if b not in system.bugs]
    if unknown:
        raise FaultbedError(f"unknown bug(s) for {spec.system}: {', '.join(unknown)} "
                            f"(known: {', '.join(system.bugs) or 'none'})")
    check_options(system, spec.system, spec.options)
    check_spec = getattr(backend, "check_spec", None)  # a backend's own checks (the ssh backend's inventory)
    if check_spec is not None:
        check_spec(spec, system)
    nodes = node_names(spec.nodes)
    faults = tuple(validate_nemesis(spec, nodes))
    validate_disk_faults(spec, system, backend, faults)
    return RunPlan(spec, system, workload, backend, faults, nodes)


def validate_disk_faults(spec: TestSpec, system: System, backend: Any, faults: tuple[FaultEntry, ...]) -> None:
    """Power loss only where FUSE works, on a backend that can inject it, for a system that promises durability."""
    kinds = {entry.kind for entry in faults}
    if not kinds & DISK_KINDS:
        return
    if not issubclass(backend, DiskControl):
        raise FaultbedError(f"the {spec.backend} backend cannot inject disk faults (local and docker can)")
    if "power-loss" in kinds and not system.traits.durable:
        raise FaultbedError(f"system {spec.system} promises no durability under power loss: "
                            "power-loss would test a promise it does not make")
