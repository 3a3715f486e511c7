"""One `faultbed run` as a subprocess in its own store, and what came of it: verdict, first
anomaly, results directory, harness trouble. Campaigns (bench/campaign.py) and hunt mode
(faultbed/hunt.py) both run their runs this way, so a crash of one run never takes the
campaign with it and parallel runs never share `store/latest`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

VERDICTS = {0: "valid", 1: "invalid", 2: "unknown", 3: "error", 130: "interrupted", 255: "internal-error"}
RUN_TIMEOUT_EXTRA = 300.0  # seconds a run may take beyond its time limit before it counts as hung
STOP_GRACE = 120.0  # seconds a hung run gets after SIGTERM to tear its cluster down


@dataclass(frozen=True)
class RunResult:
    seed: int
    verdict: str
    anomaly: float | None
    run_dir: str
    elapsed: float
    nemesis_errors: int
    recoveries: int
    error_line: str
    findings: str = ""  # the summaries of the checkers that did not find the run valid


def findings_of(results: dict[str, Any]) -> str:
    """`queue: lost 3 ...` for every checker whose verdict is not valid."""
    return "; ".join(f"{r.get('checker')}: {r.get('summary')}" for r in results.get("results", [])
                     if r.get("valid") is not True)


def first_anomaly_seconds(results: dict[str, Any]) -> float | None:
    """The earliest `first_anomaly_ms` of an invalid checker, in seconds (None when none gave one)."""
    times = [r["details"]["first_anomaly_ms"] for r in results.get("results", [])
             if r.get("valid") is False and (r.get("details") or {}).get("first_anomaly_ms") is not None]
    return min(times) / 1000 if times else None


def nemesis_trouble(run_dir: str) -> tuple[int, int]:
    """(nemesis events with an error, Toxiproxy recoveries) in a run's history."""
    errors = recoveries = 0
    try:
        with open(os.path.join(run_dir, "history.jsonl"), encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(event, dict) or event.get("process") != "nemesis":
                    continue
                if str(event.get("f", "")).startswith("toxiproxy-"):
                    recoveries += 1  # its `error` is the cause it recovered from, counted here
                elif event.get("error"):
                    errors += 1
    except OSError:
        pass
    return errors, recoveries


def time_limit_of(args: Sequence[str]) -> float:
    for flag, value in zip(args, args[1:]):
        if flag == "--time-limit":
            try:
                return float(value)
            except ValueError:
                break
    return 30.0


def run_once(args: Sequence[str], seed: int, store: str, hang_after: float = RUN_TIMEOUT_EXTRA) -> RunResult:
    """One `faultbed run ARGS --seed SEED` in its own store directory STORE/seed-SEED. A run still
    going `hang_after` seconds after its time limit is hung: it gets SIGTERM (it stops what it
    started, as after Ctrl-C) and, after STOP_GRACE more seconds, SIGKILL (`faultbed gc` then)."""
    own_store = os.path.join(store, f"seed-{seed}")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "faultbed", "run", "--quiet", "--seed", str(seed),
                             "--store", own_store, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _, stderr = proc.communicate(timeout=time_limit_of(args) + hang_after)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=STOP_GRACE)
            how = "stopped by SIGTERM"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            how = "killed after SIGTERM did not stop it; `faultbed gc` removes what it left"
        code, stderr = -1, f"hung: no exit within {hang_after:g} s after its time limit ({how})"
    elapsed = time.monotonic() - start
    verdict = VERDICTS.get(code, "hung" if code == -1 else f"exit {code}")
    run_dir = os.path.realpath(os.path.join(own_store, "latest"))
    anomaly, findings = None, ""
    results_path = os.path.join(run_dir, "results.json")
    if verdict in ("invalid", "unknown") and os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as fh:
            results = json.load(fh)
        anomaly, findings = first_anomaly_seconds(results), findings_of(results)
    errors, recoveries = nemesis_trouble(run_dir)
    lines = stderr.strip().splitlines()
    error_line = lines[-1] if lines and verdict not in ("valid", "invalid", "unknown") else ""
    return RunResult(seed, verdict, anomaly, run_dir, elapsed, errors, recoveries, error_line, findings)
