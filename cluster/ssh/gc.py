"""`faultbed gc --hosts FILE`: what crashed ssh runs left on the inventory's hosts, removed.

A run's directory on a host (<workdir>/<run id>) names its harness (machine boot id, pid, start
time). It is stale when that harness ran on this machine and is gone; runs started from another
machine are only reported (their harness cannot be seen from here) unless `--all`. Removing one
stops every process in its processes.jsonl (by pid and start time), drops its /etc/hosts block
and deletes the directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from faultbed.cluster.registry import is_alive
from faultbed.cluster.ssh.backend import harness_identity
from faultbed.cluster.ssh.connection import SSHConnection
from faultbed.cluster.ssh.inventory import load_inventory
from faultbed.cluster.ssh.remote import RemoteHost
from faultbed.errors import SetupError


@dataclass(frozen=True)
class HostsGC:
    """What gc did: one line per run removed or left, and the hosts it could not reach."""

    lines: tuple[str, ...]
    removed: int
    unreachable: tuple[str, ...]


def harness_alive(harness: Any, me: dict[str, Any]) -> bool | None:
    """True/False for a harness of this machine; None when it ran elsewhere (it cannot be seen from here)."""
    if not isinstance(harness, dict):
        return False  # no harness written: the run never got past its first step
    if harness.get("boot_id") != me["boot_id"]:
        return None
    pid, start = harness.get("pid"), harness.get("start")
    if not isinstance(pid, int):
        return False
    return is_alive(pid, start if isinstance(start, int) else None)


def gc_hosts(path: str, include_live: bool = False) -> HostsGC:
    """Remove the stale runs on every host of the inventory in `path` (FaultbedError for a bad inventory)."""
    inventory = load_inventory(path)
    me = harness_identity()
    lines: list[str] = []
    unreachable: list[str] = []
    removed = 0
    control_dir = tempfile.mkdtemp(prefix="fbssh-gc-", dir="/tmp")
    try:
        for host in inventory.hosts.values():
            try:
                with SSHConnection(host, control_dir) as connection:
                    remote = RemoteHost(connection)
                    runs = remote.agent("runs", host.workdir)
                    left = len(runs)
                    for run in runs:
                        name = os.path.basename(run["run_dir"])
                        alive = harness_alive(run.get("harness"), me)
                        if alive is None and not include_live:
                            lines.append(f"gc: host {host.name}: left run {name} of harness "
                                         f"{run['harness'].get('hostname')} (another machine; --all removes it)")
                            continue
                        if alive and not include_live:
                            continue
                        answer = remote.agent("cleanup", run["run_dir"])
                        stopped, failed = answer.get("stopped", []), answer.get("failed", [])
                        left -= 0 if failed else 1
                        removed += len(stopped) + (0 if failed else 1)
                        lines.append(f"gc: host {host.name}: run {name}: stopped {len(stopped)} process(es)"
                                     + (f", could not remove {'; '.join(failed)}" if failed
                                        else f", removed {run['run_dir']}"))
                    if left == 0 and remote.agent("drop-cache", host.workdir):
                        lines.append(f"gc: host {host.name}: no run left, removed {host.workdir}/cache")
            except SetupError as exc:
                unreachable.append(host.name)
                lines.append(f"gc: {exc}")
    finally:
        shutil.rmtree(control_dir, ignore_errors=True)
    return HostsGC(tuple(lines), removed, tuple(unreachable))
