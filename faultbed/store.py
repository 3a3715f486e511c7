"""The results directory: store/<system>-<workload>/<UTC timestamp>/, and store/latest."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from faultbed.errors import FaultbedError
from faultbed.plugins import system_label
from faultbed.spec import TestSpec

SPEC, SCHEDULE, PLAN, HISTORY, RESULTS = "spec.json", "schedule.json", "plan.jsonl", "history.jsonl", "results.json"
SYSTEM_FILE = "system.toml"  # a copy of the run's system file, when it ran one (replay falls back to it)
LINEARIZABILITY_HTML, REPORT_HTML = "linearizability.html", "report.html"


def create_run_dir(spec: TestSpec) -> str:
    """A new, empty results directory for `spec` (a suffix keeps parallel runs apart)."""
    parent = os.path.join(spec.store, f"{system_label(spec.system)}-{spec.workload}")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        os.makedirs(parent, exist_ok=True)
        for attempt in range(1000):
            path = os.path.join(parent, stamp if attempt == 0 else f"{stamp}-{attempt}")
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
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


def newness(run_dir: str) -> tuple[str, int]:
    """Sort key: the UTC stamp, then the suffix that keeps runs of the same second apart (-1, -2, ... -10)."""
    stamp, _, suffix = os.path.basename(run_dir).partition("-")
    return stamp, int(suffix) if suffix.isdigit() else 0
