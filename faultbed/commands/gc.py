"""`faultbed gc`: remove what crashed runs left behind (processes, containers, networks)."""

from __future__ import annotations

import argparse
import os
import sys

from faultbed.cluster.disk import detach, is_mounted
from faultbed.cluster.ports import LOCK_DIR, remove_stale_locks
from faultbed.cluster.registry import kill_processes, malformed_records, stale_runs
from faultbed.errors import SetupError

HELP = ("stop and remove everything left by runs whose harness is gone (processes, mounts, containers, "
        "stale port lock files); malformed run records are reported and skipped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="also runs whose harness is still alive")
    parser.add_argument("--hosts", metavar="FILE",
                        help="also the ssh backend's hosts in this inventory: nodes, Toxiproxy and working "
                             "files of runs whose harness is gone")


def execute(args: argparse.Namespace) -> int:
    if args.hosts:  # a bad inventory is one line before anything is touched
        from faultbed.cluster.ssh.inventory import load_inventory

        load_inventory(args.hosts)
    removed = 0
    for record in malformed_records():  # reported and left alone: gc never acts on what it cannot trust
        print(f"gc: skipped malformed run record {record.path}: {record.reason}")
    for run in stale_runs(include_live=args.all):
        if run.pids:
            kill_processes(run.pids)
            print(f"gc: run {run.run_id}: stopped {len(run.pids)} process(es)")
            removed += len(run.pids)
        removed += _unmount(run.run_id, run.mounts)
        if run.record_path and os.path.exists(run.record_path):
            os.unlink(run.record_path)
    removed += _docker_gc(args.all)
    unreachable: tuple[str, ...] = ()
    if args.hosts:
        from faultbed.cluster.ssh.gc import gc_hosts

        hosts = gc_hosts(args.hosts, include_live=args.all)
        for line in hosts.lines:
            print(line)
        removed += hosts.removed
        unreachable = hosts.unreachable
    locks = remove_stale_locks()
    if locks:
        print(f"gc: removed {locks} stale port lock file(s) from {LOCK_DIR}")
        removed += locks
    print(f"gc: {removed} left-over resource(s) removed" if removed else "gc: nothing to clean")
    if unreachable:
        print(f"gc: could not reach {', '.join(unreachable)}: what runs left there stays", file=sys.stderr)
        return 3
    return 0


def _unmount(run_id: str, mounts: tuple[str, ...]) -> int:
    """Detach the FUSE mounts a dead run left (its daemons are already stopped)."""
    count = 0
    for path in mounts:
        if not is_mounted(path):
            continue
        try:
            detach(path)
        except SetupError as exc:
            print(f"gc: run {run_id}: {exc}")
            continue
        print(f"gc: run {run_id}: unmounted {path}")
        count += 1
    return count


def _docker_gc(include_live: bool) -> int:
    """Containers and networks labelled by dead runs (only when Docker is reachable)."""
    try:
        from faultbed.cluster.docker import gc_docker
    except ImportError:
        return 0
    return int(gc_docker(include_live=include_live))
