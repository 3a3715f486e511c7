"""Disk fault kinds: power loss (un-fsynced writes dropped), corruption of durable files, failing and
slow disks.

- `power-loss:TARGET` kills the targets (all of them first: `power-loss:all` is one
  coordinated power failure), then each node's faultbed-diskfs forgets every write
  not fsync'd; the nodes stay down until the fault stops, then restart.
- `corrupt:TARGET` kills the targets, then in each flips bits in, or truncates, one
  of the system's data files (`SystemTraits.data_files`), choosing the file, the mode
  and the bytes from the schedule's seed; the nodes restart at stop. The corruption
  goes through the node's own view of its files (the mount, if any) and is fsync'd,
  as a disk that returns bad bytes would.

- `disk-error:TARGET` makes fsync fail with EIO (nothing becomes durable) and
  `disk-slow:TARGET` adds 100 ms to every write and fsync, while the fault lasts.

All need the backend's `DiskControl`; all but corrupt need FUSE (cluster/disk.py). Their start
events say `disk_fault: true`: a node that exits after its disk failed it may be failing safely
(the node-exits checker does not count such an exit as an anomaly).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from faultbed.cluster import disk
from faultbed.cluster.backend import DEAD, PAUSED, RUNNING, ProcessControl
from faultbed.errors import SetupError
from faultbed.nemesis.kinds import ActiveFault, FaultContext, FaultKindBase, Healed, heal_nodes
from faultbed.nemesis.targets import plan_targets, resolve_targets

log = logging.getLogger(__name__)

CORRUPT_MODES = ("bitflip", "truncate")
MAX_FLIPS = 8
FLIP_SPAN = 512  # flipped bits land within this many bytes of each other


@runtime_checkable
class DiskControl(Protocol):
    """What the disk faults need of a backend (the local backend has it)."""

    def kill(self, node: str) -> None: ...
    def power_loss(self, node: str) -> None: ...
    def disk_faults(self, node: str, fsync_error: bool | None = None, delay_ms: int | None = None) -> None: ...
    def data_dir(self, node: str) -> str: ...
    def state(self, node: str) -> str: ...
    def restart(self, node: str) -> None: ...


def disk_control(backend: object, kind: str) -> DiskControl:
    if not isinstance(backend, DiskControl):
        raise SetupError(f"{kind}: the {getattr(backend, 'name', '?')} backend cannot inject disk faults")
    return backend


@dataclass(frozen=True)
class Corruption:
    """What a corrupt fault did to one file (JSON-able through `to_json`)."""

    node: str
    file: str
    mode: str
    size: int
    offset: int = 0
    bits: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"node": self.node, "file": self.file, "mode": self.mode, "size": self.size}
        if self.mode == "truncate":
            data["truncated_to"] = self.offset
        else:
            data["bits"] = list(self.bits)
        return data

    def describe(self) -> str:
        if self.mode == "truncate":
            return f"{self.node}:{self.file} truncated {self.size} -> {self.offset} bytes"
        return f"{self.node}:{self.file} {len(self.bits)} bit(s) flipped near byte {self.offset}"


def data_files(root: str, patterns: Sequence[str]) -> list[str]:
    """Regular, non-empty files under `root` (relative paths, sorted) matching any pattern (all if none)."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root)
            if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) > 0 and \
                    (not patterns or any(fnmatch.fnmatch(relative, p) for p in patterns)):
                found.append(relative)
    return sorted(found)


def corrupt_file(root: str, node: str, relative: str, mode: str, rng: random.Random) -> Corruption:
    """Flip up to MAX_FLIPS bits close together, or truncate to a shorter length; fsync'd."""
    path = os.path.join(root, relative)
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        if mode == "truncate":
            length = rng.randrange(size)
            fh.truncate(length)
            result = Corruption(node, relative, mode, size, offset=length)
        else:
            start = rng.randrange(size)
            span = min(FLIP_SPAN * 8, (size - start) * 8)
            bits = tuple(sorted(rng.sample(range(start * 8, start * 8 + span), min(span, rng.randint(1, MAX_FLIPS)))))
            for bit in bits:
                fh.seek(bit // 8)
                byte = fh.read(1)[0]
                fh.seek(bit // 8)
                fh.write(bytes([byte ^ (1 << (bit % 8))]))
            result = Corruption(node, relative, mode, size, offset=start, bits=bits)
        fh.flush()
        os.fsync(fh.fileno())
    return result


def kill_all(backend: DiskControl, nodes: Sequence[str]) -> list[str]:
    """SIGKILL every running or paused node of `nodes` (before anything else happens to any of them)."""
    hit = [n for n in nodes if backend.state(n) in (RUNNING, PAUSED)]
    for node in hit:
        backend.kill(node)
    return hit


def restart_dead(backend: DiskControl, nodes: Sequence[str]) -> list[str]:
    done = [n for n in nodes if backend.state(n) == DEAD]
    for node in done:
        backend.restart(node)
    return done


def check_power_loss_available() -> None:
    """Refuse power loss (one line, exit 3) on a machine without FUSE or the diskfs daemon."""
    disk.check_available()


# -- the kinds -----------------------------------------------------------------------------------

def _restart(backend: ProcessControl, node: str) -> None:
    backend.restart(node)


class PowerLossKind(FaultKindBase[tuple[str, ...]]):
    """Kill the targets, drop their un-fsynced writes (all killed before any disk forgets); restart at stop."""

    name = "power-loss"
    description = "power failure (power-loss:TARGET): kill, drop un-fsynced writes, restart at stop"
    color = "#f4a6a6"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        check_power_loss_available()
        return plan_targets(arg, nodes, rng, self.name)

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[tuple[str, ...]]:
        nodes, extra = resolve_targets(ctx, params)
        backend = disk_control(ctx.cluster.backend, self.name)
        with ctx.lock:
            hit = kill_all(backend, nodes)
            for node in nodes:
                backend.power_loss(node)
        details = {"nodes": list(nodes), "target": params["target"], "were_running": hit, "disk_fault": True,
                   **extra}
        return ActiveFault(fault_id, self.name, f"power loss on {','.join(nodes)}", details, state=tuple(nodes))

    def stop(self, ctx: FaultContext, active: ActiveFault[tuple[str, ...]]) -> str:
        backend = disk_control(ctx.cluster.backend, self.name)
        with ctx.lock:
            done = restart_dead(backend, active.state)
        return "power back: restarted " + (",".join(done) or "nobody")

    def heal(self, ctx: FaultContext) -> Healed:
        return heal_nodes(ctx, DEAD, "restarted", _restart)


class CorruptKind(FaultKindBase[tuple[str, ...]]):
    """Kill the targets, flip bits in or truncate one data file of each (seeded); restart at stop."""

    name = "corrupt"
    description = "corrupt a data file (corrupt:TARGET): kill, flip bits or truncate, restart at stop"
    color = "#c9a6f4"

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        params = plan_targets(arg, nodes, rng, self.name)
        params["modes"] = {node: rng.choice(CORRUPT_MODES) for node in nodes}
        params["seed"] = rng.randrange(2 ** 32)
        return params

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[tuple[str, ...]]:
        nodes, extra = resolve_targets(ctx, params)
        backend = disk_control(ctx.cluster.backend, self.name)
        patterns = ctx.cluster.system.traits.data_files
        done: list[Corruption] = []
        untouched: list[str] = []
        with ctx.lock:
            kill_all(backend, nodes)
            for node in nodes:
                rng = random.Random(f"{params['seed']}:{node}")
                root = backend.data_dir(node)
                files = data_files(root, patterns)
                if not files:
                    untouched.append(node)
                    continue
                mode = params["modes"].get(node) or rng.choice(CORRUPT_MODES)
                done.append(corrupt_file(root, node, rng.choice(files), mode, rng))
        details: dict[str, Any] = {"nodes": list(nodes), "target": params["target"], "disk_fault": True,
                                   "corrupted": [c.to_json() for c in done], **extra}
        if untouched:
            details["no_data_files"] = untouched
        summary = "corrupt " + ("; ".join(c.describe() for c in done) or "nothing (no data files yet)")
        return ActiveFault(fault_id, self.name, summary, details, state=tuple(nodes))

    def stop(self, ctx: FaultContext, active: ActiveFault[tuple[str, ...]]) -> str:
        backend = disk_control(ctx.cluster.backend, self.name)
        with ctx.lock:
            done = restart_dead(backend, active.state)
        return "restarted " + (",".join(done) or "nobody") + " on corrupted data"

    def heal(self, ctx: FaultContext) -> Healed:
        return heal_nodes(ctx, DEAD, "restarted", _restart)


@dataclass(frozen=True)
class DiskFaultKind(FaultKindBase[tuple[str, ...]]):
    """Set a disk fault on the targets at start (fsync_error or delay_ms), clear it at stop and at heal."""

    name: str
    description: str
    setting: str            # "fsync_error" or "delay_ms"
    on: Any                 # its value while the fault lasts
    off: Any
    color: str              # last: FaultKindBase's class attribute is its default

    def plan(self, arg: str | None, nodes: Sequence[str], rng: random.Random,
             options: dict[str, Any]) -> dict[str, Any]:
        check_power_loss_available()
        return plan_targets(arg, nodes, rng, self.name)

    def start(self, ctx: FaultContext, fault_id: str, params: dict[str, Any]) -> ActiveFault[tuple[str, ...]]:
        nodes, extra = resolve_targets(ctx, params)
        backend = disk_control(ctx.cluster.backend, self.name)
        with ctx.lock:
            for node in nodes:
                backend.disk_faults(node, **{self.setting: self.on})
        details = {"nodes": list(nodes), "target": params["target"], self.setting: self.on, "disk_fault": True,
                   **extra}
        return ActiveFault(fault_id, self.name, f"{self.name} on {','.join(nodes)}", details, state=tuple(nodes))

    def stop(self, ctx: FaultContext, active: ActiveFault[tuple[str, ...]]) -> str:
        backend = disk_control(ctx.cluster.backend, self.name)
        with ctx.lock:
            for node in active.state:
                backend.disk_faults(node, **{self.setting: self.off})
        return f"{self.name} over on {','.join(active.state)}"

    def heal(self, ctx: FaultContext) -> Healed:
        backend = disk_control(ctx.cluster.backend, self.name)
        for node in ctx.cluster.nodes:
            backend.disk_faults(node, **{self.setting: self.off})
        return {}


DISK_ERROR = DiskFaultKind("disk-error", "fsync fails with EIO (disk-error:TARGET); the data stays volatile",
                           setting="fsync_error", on=True, off=False, color="#e88b8b")
DISK_SLOW = DiskFaultKind("disk-slow", "every write and fsync takes 100 ms longer (disk-slow:TARGET)",
                          setting="delay_ms", on=100, off=0, color="#e8c58b")
POWER_LOSS = PowerLossKind()
CORRUPT = CorruptKind()
