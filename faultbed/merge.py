"""Gathering runs from several stores (one per host, shard or CI job) into one store.

A run is copied to <into>/<group>/<stamp>[-N]@<host>: the host it ran on (its origin.json,
else the name given for a source) is in the path, so runs of different hosts never collide,
and merging the same store twice copies nothing twice (a run already there with the same
origin is skipped). The copy appears whole or not at all (copied beside, then renamed), its
results.json names its new place in `replay`, and origin.json keeps where it ran.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from typing import Any

from faultbed import store
from faultbed.errors import FaultbedError

log = logging.getLogger(__name__)
MAX_DEPTH = 8  # stores nest runs a few levels deep (a campaign's seed-N/, pytest's per-worker stores)


@dataclass(frozen=True)
class Merged:
    """What became of one run: copied to `target`, or skipped because it was there already."""

    source: str
    target: str
    host: str
    copied: bool


def find_runs(root: str) -> list[str]:
    """Every results directory (one with spec.json) under `root`, `root` itself included; links not followed."""
    found: list[str] = []

    def walk(path: str, depth: int) -> None:
        if os.path.isfile(os.path.join(path, store.SPEC)):
            found.append(path)
            return  # a run's own subdirectories (nodes/, data/) hold no runs
        if depth >= MAX_DEPTH:
            return
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc.strerror)
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and not entry.name.endswith(".merging"):
                walk(entry.path, depth + 1)

    walk(root, 0)
    return found


def merge_stores(sources: list[str], into: str, host: str | None = None,
                 relabel: bool = False) -> dict[str, list[Merged]]:
    """Copy every run under each of `sources` into the store `into` (see the module's docstring);
    what became of each source's runs. `host` names runs that carry no origin.json (older runs),
    or every run when `relabel` (pulled from an inventory's host: the name the inventory gives it).

    Every source is checked before anything is copied.
    """
    for source in sources:
        if not os.path.isdir(source):
            raise FaultbedError(f"{source}: no such store directory")
        if _inside(source, into) or _inside(into, source):
            raise FaultbedError(f"{source}: the store to merge and --into {into} must not contain each other")
    if host is not None and not store.HOST_NAME.fullmatch(host):
        raise FaultbedError(f"--host {host[:40]!r}: a host name is letters, digits, '.', '_' and '-'")
    try:
        os.makedirs(into, exist_ok=True)
    except OSError as exc:
        raise FaultbedError(f"--into {into}: cannot create it: {exc.strerror}") from exc
    return {source: [merge_run(run_dir, into, host, relabel) for run_dir in find_runs(source)]
            for source in sources}


def merge_run(run_dir: str, into: str, host: str | None = None, relabel: bool = False) -> Merged:
    """Copy one run into the store `into` (skipped when the same run is there already)."""
    origin = store.read_origin(run_dir) or {"host": host or "unknown", "path": os.path.abspath(run_dir)}
    if relabel and host is not None and origin["host"] != host:
        origin = {**origin, "host": host, "hostname": origin["host"]}  # the name it gave itself stays
    ran_on = origin["host"] if store.HOST_NAME.fullmatch(origin["host"]) else "unknown"
    group = os.path.basename(os.path.dirname(os.path.abspath(run_dir))) or "runs"
    name = os.path.basename(os.path.abspath(run_dir)).partition(store.HOST_MARK)[0]
    parent = os.path.join(into, group)
    os.makedirs(parent, exist_ok=True)
    for attempt in range(1000):
        target = os.path.join(parent, f"{name}{store.HOST_MARK}{ran_on}" + (f"+{attempt}" if attempt else ""))
        if not os.path.lexists(target):
            break
        if _same_origin(store.read_origin(target), origin):
            return Merged(run_dir, target, ran_on, copied=False)
    else:
        raise FaultbedError(f"cannot find a free name for {run_dir} under {parent}")
    staging = os.path.join(parent, f".{uuid.uuid4().hex[:8]}.merging")
    try:
        shutil.copytree(run_dir, staging, symlinks=True, copy_function=_copy_regular_file)
        # a pulled run's copy was a temporary one: its origin path (on its host) is the whole story
        noted = origin if relabel else {**origin, "merged_from": os.path.abspath(run_dir)}
        store.write_json(staging, store.ORIGIN, noted)
        _point_replay_at(staging, target)
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise FaultbedError(f"cannot copy {run_dir} to {target}: {exc.strerror or exc}") from exc
    return Merged(run_dir, target, ran_on, copied=True)


def _same_origin(there: dict[str, Any], origin: dict[str, Any]) -> bool:
    return bool(there) and (there.get("host"), there.get("path")) == (origin.get("host"), origin.get("path"))


def _point_replay_at(run_dir: str, final: str) -> None:
    """results.json's replay command names the run where it now lives (its verdict is untouched)."""
    path = os.path.join(run_dir, store.RESULTS)
    try:
        with open(path, encoding="utf-8") as fh:
            results = json.load(fh)
    except (OSError, ValueError):
        return  # no verdict yet (an interrupted run), or one `faultbed check` will name as unreadable
    if isinstance(results, dict):
        results["replay"] = f"faultbed replay {os.path.abspath(final)}"
        store.write_json(run_dir, store.RESULTS, results)


def _copy_regular_file(source: str, target: str) -> str:
    """shutil.copy2 for regular files; a socket or FIFO a node left in its data directory is skipped."""
    if not stat.S_ISREG(os.stat(source).st_mode):
        log.info("not copied (not a regular file): %s", source)
        return target
    return str(shutil.copy2(source, target))


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([path, root]) == root
