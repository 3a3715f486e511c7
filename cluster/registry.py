"""A record of what each run started, so `faultbed gc` can clean up after a crashed harness.

Every run writes <state dir>/<run id>.json naming the harness process and every
process it spawned (pid + kernel start time, so a reused pid is never killed).
Spawned processes also carry FAULTBED_RUN=<run id> in their environment, which
finds them even if the record missed one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

log = logging.getLogger(__name__)

STATE_DIR = os.environ.get("FAULTBED_STATE_DIR", "/tmp/faultbed-runs")
RUN_ENV = "FAULTBED_RUN"
HARNESS_ENV = "FAULTBED_HARNESS"  # <pid>:<start time> of the harness that started the process


def run_env(run_id: str) -> dict[str, str]:
    """The environment every process of a run carries: its run id and its live harness.

    The harness lets gc tell a live run from a crashed one even without its record (a
    `faultbed gc` with another FAULTBED_STATE_DIR must never stop someone else's live run).
    """
    pid = os.getpid()
    return {RUN_ENV: run_id, HARNESS_ENV: f"{pid}:{process_start_time(pid)}"}


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if it is gone."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    return int(fields[19]) if fields else None


def process_state(pid: int) -> str | None:
    """The one-letter state of `pid`'s main thread (T: stopped, Z: a zombie), or None when it is gone."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    return fields[0] if fields else None


def every_thread_stopped(pid: int) -> bool:
    """No thread of `pid` runs: each is stopped or has ended (or the process is gone). A SIGSTOP stops
    each thread in its own time: a process whose main thread is stopped may still answer from another
    thread for a moment."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    states = [fields[0] for task in tasks if (fields := _stat_fields(f"/proc/{pid}/task/{task}/stat"))]
    return all(state in _NOT_RUNNING for state in states)


_NOT_RUNNING = ("T", "t", "Z", "X", "x")  # stopped (by a signal, by a tracer), ended


def _stat_fields(path: str) -> list[str] | None:
    """The fields of a /proc stat file after the command name (state first), or None when it is gone."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name may contain spaces or parentheses: split after the last ')'
    fields = stat[stat.rfind(")") + 2:].split()
    return fields or None


def is_alive(pid: int, start_time: int | None) -> bool:
    current = process_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


class RunRecord:
    """The on-disk record of one run; updated as processes start and stop."""

    def __init__(self, run_id: str, run_dir: str | None = None) -> None:
        self.run_id = run_id
        self.path = os.path.join(STATE_DIR, f"{run_id}.json")
        self._lock = threading.Lock()
        pid = os.getpid()
        self._data: dict[str, Any] = {
            "run_id": run_id, "run_dir": run_dir, "created": time.time(),
            "harness": {"pid": pid, "start": process_start_time(pid)}, "processes": {},
        }
        os.makedirs(STATE_DIR, exist_ok=True)
        self._save()

    def add_process(self, role: str, pid: int) -> None:
        with self._lock:
            self._data["processes"][role] = {"pid": pid, "start": process_start_time(pid)}
            self._save()

    def note(self, key: str, value: Any) -> None:
        """Record something else the run owns (docker containers, networks)."""
        with self._lock:
            self._data[key] = value
            self._save()

    def note_mount(self, path: str) -> None:
        """Record a filesystem mounted for this run (FUSE over a node's data directory)."""
        with self._lock:
            mounts = self._data.setdefault("mounts", [])
            if path not in mounts:
                mounts.append(path)
            self._save()

    def forget_mount(self, path: str) -> None:
        with self._lock:
            mounts = self._data.get("mounts", [])
            if path in mounts:
                mounts.remove(path)
            self._save()

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _save(self) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self._data, fh)
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class StaleRun:
    run_id: str
    record_path: str | None
    pids: tuple[int, ...]
    mounts: tuple[str, ...] = ()


MAX_PID = 2**22  # Linux's pid_max cannot exceed it; anything larger in a record is not a process


@dataclass(frozen=True)
class MalformedRecord:
    """A record gc cannot trust: it is reported and left alone, never acted on."""

    path: str
    reason: str


def _record_files() -> Iterator[tuple[str, Any]]:
    """(path, parsed JSON or the reason it cannot be read) of every record in the state dir."""
    if not os.path.isdir(STATE_DIR):
        return
    for name in sorted(os.listdir(STATE_DIR)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(STATE_DIR, name)
        try:
            with open(path, encoding="utf-8") as fh:
                yield path, json.load(fh)
        except (OSError, ValueError, RecursionError) as exc:
            yield path, MalformedRecord(path, f"unreadable: {str(exc)[:120]}")


def _record_problem(data: Any) -> str | None:
    """Why a parsed record is not one faultbed wrote (None when it is well-formed)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("run_id"), str) or not data["run_id"]:
        return "no run_id string"
    harness = data.get("harness")
    if not isinstance(harness, dict) or _process_problem(harness):
        return f"harness: {_process_problem(harness) if isinstance(harness, dict) else 'not an object'}"
    processes = data.get("processes", {})
    if not isinstance(processes, dict):
        return "processes: not an object"
    for role, process in processes.items():
        problem = _process_problem(process) if isinstance(process, dict) else "not an object"
        if problem:
            return f"process {str(role)[:40]}: {problem}"
    mounts = data.get("mounts", [])
    if not isinstance(mounts, list) or not all(isinstance(m, str) for m in mounts):
        return "mounts: not a list of paths"
    return None


def _process_problem(process: dict[str, Any]) -> str | None:
    pid, start = process.get("pid"), process.get("start")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid <= MAX_PID:
        return f"pid {str(pid)[:30]} is not a process id"
    if start is not None and (isinstance(start, bool) or not isinstance(start, int) or start < 0):
        return f"start {str(start)[:30]} is not a start time"
    return None


def _read_records() -> Iterator[tuple[str, dict[str, Any]]]:
    """Well-formed records only (see malformed_records for the others)."""
    for path, data in _record_files():
        if not isinstance(data, MalformedRecord) and _record_problem(data) is None:
            yield path, data


def run_id_for(run_dir: str) -> str | None:
    """The id of this harness's live run in `run_dir`, from its record (None when there is none).

    For processes a run starts outside its backend (a system file's client programs), so
    they carry the run's environment too and gc finds them after a crash.
    """
    wanted = os.path.realpath(run_dir)
    for _, data in _read_records():
        harness = data.get("harness") or {}
        if harness.get("pid") == os.getpid() and data.get("run_dir") \
                and os.path.realpath(str(data["run_dir"])) == wanted:
            return str(data["run_id"])
    return None


def malformed_records() -> list[MalformedRecord]:
    """Records in the state dir that gc skips: unreadable, not JSON, or not shaped as faultbed writes them."""
    found = []
    for path, data in _record_files():
        if isinstance(data, MalformedRecord):
            found.append(data)
        elif (problem := _record_problem(data)) is not None:
            found.append(MalformedRecord(path, problem))
    return found


def _environ_value(pid: int, name: str) -> str | None:
    """The value of `name` in process `pid`'s environment (None when absent or the process is gone)."""
    marker = f"{name}=".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(marker):
            return item[len(marker):].decode(errors="replace")
    return None


def _processes_by_run() -> dict[str, list[int]]:
    """Every process whose environment carries FAULTBED_RUN, by run id."""
    found: dict[str, list[int]] = {}
    for entry in os.listdir("/proc"):
        run_id = _environ_value(int(entry), RUN_ENV) if entry.isdigit() else None
        if run_id is not None:
            found.setdefault(run_id, []).append(int(entry))
    return found


def _harness_alive(pids: list[int]) -> bool:
    """True when a process of `pids` names (in HARNESS_ENV) a harness that is still running."""
    for pid in pids:
        value = _environ_value(pid, HARNESS_ENV)
        if value is not None:
            harness, _, start = value.partition(":")
            try:
                return is_alive(int(harness), int(start) if start.isdigit() else None)
            except ValueError:
                return False
    return False


def live_run_ids() -> set[str]:
    """Runs whose harness process is still alive."""
    alive = set()
    for _, data in _read_records():
        harness = data["harness"]
        if is_alive(harness["pid"], harness.get("start")):
            alive.add(data["run_id"])
    return alive


def stale_runs(include_live: bool = False) -> list[StaleRun]:
    """Runs whose harness is gone (or every run, with include_live), with their leftover pids."""
    by_env = _processes_by_run()
    live = set() if include_live else live_run_ids()
    runs: dict[str, StaleRun] = {}
    for path, data in _read_records():
        run_id = data["run_id"]
        if run_id in live:
            continue
        # a process recorded without a start time was gone when recorded: its pid may be someone else's now
        recorded = {p["pid"] for p in data.get("processes", {}).values()
                    if p.get("start") is not None and is_alive(p["pid"], p["start"])}
        recorded.update(by_env.get(run_id, []))
        runs[run_id] = StaleRun(run_id, path, tuple(sorted(recorded)), tuple(data.get("mounts", ())))
    for run_id, found in by_env.items():
        # no record here (another state dir, or lost): stale only when its harness is gone too
        if run_id not in runs and run_id not in live and not _harness_alive(found):
            runs[run_id] = StaleRun(run_id, None, tuple(sorted(found)))
    own = os.getpid()
    return [StaleRun(r.run_id, r.record_path, tuple(p for p in r.pids if p != own), r.mounts) for r in runs.values()]


def kill_processes(pids: tuple[int, ...], grace: float = 2.0) -> None:
    """SIGCONT (a paused process cannot die of SIGTERM), SIGTERM, then SIGKILL what is left."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(process_start_time(p) is not None for p in pids):
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
