"""Detection campaigns: the same `faultbed run` with N seeds, and how often each verdict came.

    python -m bench.campaign --runs 10 -- --bug stale-reads --time-limit 30

Prints one line per run and a summary: valid / invalid / unknown / error counts and
the median time into the run of the first anomalous operation (when a checker
reports `first_anomaly_ms`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

VERDICTS = {0: "valid", 1: "invalid", 2: "unknown", 3: "error"}


def first_anomaly_seconds(results: dict[str, Any]) -> float | None:
    times = [r["details"]["first_anomaly_ms"] for r in results.get("results", [])
             if r.get("valid") is False and r.get("details", {}).get("first_anomaly_ms") is not None]
    return min(times) / 1000 if times else None


def run_once(args: list[str], seed: int, store: str) -> tuple[str, float | None, str, float]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "faultbed", "run", "--quiet", "--seed", str(seed),
                           "--store", store, *args], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    verdict = VERDICTS.get(proc.returncode, f"exit {proc.returncode}")
    run_dir = os.path.realpath(os.path.join(store, "latest"))
    anomaly = None
    results_path = os.path.join(run_dir, "results.json")
    if verdict == "invalid" and os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as fh:
            anomaly = first_anomaly_seconds(json.load(fh))
    if verdict == "error":
        run_dir = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"
    return verdict, anomaly, run_dir, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed-base", type=int, default=1000)
    parser.add_argument("--store", default=None, help="results root (default: a temporary directory)")
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then `faultbed run` flags")
    ns = parser.parse_args(argv)
    run_args = [a for a in ns.run_args if a != "--"]
    store = ns.store or tempfile.mkdtemp(prefix="faultbed-campaign-")
    counts: dict[str, int] = {}
    anomalies: list[float] = []
    print(f"campaign: {ns.runs} runs of `faultbed run {' '.join(run_args)}`, store {store}", flush=True)
    for i in range(ns.runs):
        seed = ns.seed_base + i
        verdict, anomaly, run_dir, elapsed = run_once(run_args, seed, store)
        counts[verdict] = counts.get(verdict, 0) + 1
        if anomaly is not None:
            anomalies.append(anomaly)
        shown = f", first anomaly at {anomaly:.1f}s" if anomaly is not None else ""
        print(f"  seed {seed}: {verdict}{shown} ({elapsed:.0f}s) {run_dir}", flush=True)
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("valid", "invalid", "unknown", "error"))
    median = f"; median first anomaly at {statistics.median(anomalies):.1f}s" if anomalies else ""
    print(f"campaign result: {summary} of {ns.runs}{median}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
