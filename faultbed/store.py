"""The results directory: store/<system>-<workload>/<UTC timestamp>/, and store/latest.

Every run notes where it ran in origin.json (the host's name and the run's path there), so a
store that gathers runs from several hosts (`faultbed store merge`) can tell them apart.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

from faultbed.errors import FaultbedError
from faultbed.plugins import system_label
from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

SPEC, SCHEDULE, PLAN, HISTORY, RESULTS = "spec.json", "schedule.json", "plan.jsonl", "history.jsonl", "results.json"
SYSTEM_FILE = "system.toml"  # a copy of the run's system file, when it ran one (replay falls back to it)
LINEARIZABILITY_HTML, REPORT_HTML = "linearizability.html", "report.html"
ORIGIN = "origin.json"  # {"host": where the run ran, "path": its directory there}; a merge adds "merged_from"
CLOCK = "history_unix_ns"  # origin.json's: the Unix time (ns) at the history's time 0, once the run has started
HOST_ENV = "FAULTBED_HOST"  # this machine's name in stores, when its host name is not the one to show
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
HOST_MARK = "@"  # a merged run is <group>/<stamp>[-N]@<host>


def host_name() -> str:
    """This machine's name in the store: $FAULTBED_HOST, else its host name (up to the first dot)."""
    chosen = os.environ.get(HOST_ENV)
    if chosen is not None:
        if not HOST_NAME.fullmatch(chosen):
            raise FaultbedError(f"${HOST_ENV}={chosen[:40]!r}: a host name is letters, digits, '.', '_' "
                                "and '-' (at most 63, starting with a letter or digit)")
        return chosen
    name = os.uname().nodename.split(".")[0]  # gethostname's answer, without importing socket (3 ms)
    return name if HOST_NAME.fullmatch(name) else "localhost"


def read_origin(run_dir: str) -> dict[str, Any]:
    """origin.json of a run ({} when it has none or it is unreadable: runs from before it existed)."""
    try:
        with open(os.path.join(run_dir, ORIGIN), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("host"), str):
        return {}
    return data


def note_clock(run_dir: str, unix_ns: int) -> None:
    """origin.json notes when, on this host's clock, the history's time 0 was: other clocks' times
    (the nodes' Raft traces) then fall on the history's."""
    origin = read_origin(run_dir)
    if origin:
        try:
            write_json(run_dir, ORIGIN, {**origin, CLOCK: unix_ns})
        except OSError as exc:  # a full disk must not end the run: its traces' times go without
            log.warning("cannot note the history's clock in %s: %s", os.path.join(run_dir, ORIGIN),
                        exc.strerror or exc)


def create_run_dir(spec: TestSpec) -> str:
    """A new results directory for `spec`, holding only origin.json (a suffix keeps parallel runs apart)."""
    parent = os.path.join(spec.store, f"{system_label(spec.system)}-{spec.workload}")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    host = host_name()
    try:
        os.makedirs(parent, exist_ok=True)
        for attempt in range(1000):
            path = os.path.join(parent, stamp if attempt == 0 else f"{stamp}-{attempt}")
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            write_json(path, ORIGIN, {"host": host, "path": os.path.abspath(path)})
            return path
    except OSError as exc:  # the store is a file, read-only, on a full disk, ...
        raise FaultbedError(f"--store {spec.store}: cannot create a results directory in it: "
                            f"{exc.strerror or exc}") from exc
    raise FaultbedError(f"cannot create a results directory under {parent}")


def point_latest(spec: TestSpec, run_dir: str) -> None:
    """store/latest -> run_dir (relative, replaced atomically)."""
    link = os.path.join(spec.store, "latest")
    tmp = f"{link}.{os.getpid()}.tmp"
    try:
        os.symlink(os.path.relpath(run_dir, spec.store), tmp)
        os.replace(tmp, link)
    except OSError:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_json(run_dir: str, name: str, data: Any) -> str:
    path = os.path.join(run_dir, name)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def list_runs(store: str) -> list[str]:
    """Every results directory under `store`, newest first."""
    runs: list[str] = []
    if not os.path.isdir(store):
        return runs
    for group in os.listdir(store):
        group_dir = os.path.join(store, group)
        if group == "latest" or not os.path.isdir(group_dir) or os.path.islink(group_dir):
            continue
        for name in os.listdir(group_dir):
            path = os.path.join(group_dir, name)
            if os.path.isfile(os.path.join(path, SPEC)):
                runs.append(path)
    return sorted(runs, key=newness, reverse=True)


def newness(run_dir: str) -> tuple[str, int, str]:
    """Sort key: the UTC stamp, the suffix that keeps runs of the same second apart (-1, -2, ... -10),
    then the host a merged run came from."""
    name, _, host = os.path.basename(run_dir).partition(HOST_MARK)
    stamp, _, suffix = name.partition("-")
    return stamp, int(suffix) if suffix.isdigit() else 0, host


def home_store(run_dir: str, recorded: str) -> str:
    """The store `run_dir` lives in: its spec's `recorded` store, unless the run was moved (merged from
    another host, copied): then the store that holds it now (two levels up: <store>/<group>/<run>)."""
    run = os.path.realpath(run_dir)
    root = os.path.realpath(recorded)
    if os.path.isdir(root) and os.path.commonpath([root, run]) == root:
        return recorded
    return os.path.dirname(os.path.dirname(run))
