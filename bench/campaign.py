"""Campaigns: the same `faultbed run` with N seeds, M at a time, and how often each verdict came.

    python -m bench.campaign --runs 10 -- --bug stale-reads --time-limit 30
    python -m bench.campaign --runs 50 --parallel 2 --expect valid -- --nodes 5 \
        --nemesis partition,kill,pause,latency --nemesis-interval 4 --time-limit 20

    python -m bench.campaign --runs 50 --shard 2/3 --store /srv/campaign -- ...   # this host's third

Prints one line per run and a summary: valid / invalid / unknown / error counts, the
median time into the run of the first anomalous operation (when a checker reports
`first_anomaly_ms`), and with `--expect valid` the false alarms (invalid verdicts of
a correct system). `--shard I/N` runs every N-th seed from the I-th (faultbed/shard.py):
N hosts or CI jobs with I = 1..N run the campaign once between them, and
`faultbed store merge` gathers their stores into one. Nemesis events that carry an error (a fault not applied, a
Toxiproxy recovery) are counted from each history, so harness trouble is never hidden.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from faultbed.errors import FaultbedError
from faultbed.shard import WHOLE, parse_shard

VERDICTS = {0: "valid", 1: "invalid", 2: "unknown", 3: "error", 130: "interrupted", 255: "internal-error"}
RUN_TIMEOUT_EXTRA = 300.0  # seconds a run may take beyond its time limit before it counts as hung


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


def first_anomaly_seconds(results: dict[str, Any]) -> float | None:
    times = [r["details"]["first_anomaly_ms"] for r in results.get("results", [])
             if r.get("valid") is False and r.get("details", {}).get("first_anomaly_ms") is not None]
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


def time_limit_of(args: list[str]) -> float:
    for flag, value in zip(args, args[1:]):
        if flag == "--time-limit":
            try:
                return float(value)
            except ValueError:
                break
    return 30.0


def run_once(args: list[str], seed: int, store: str) -> RunResult:
    """One `faultbed run` in its own store directory (so parallel runs never share `latest`)."""
    own_store = os.path.join(store, f"seed-{seed}")
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "faultbed", "run", "--quiet", "--seed", str(seed),
                               "--store", own_store, *args], capture_output=True, text=True,
                              timeout=time_limit_of(args) + RUN_TIMEOUT_EXTRA)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, stderr = -1, "hung: no exit within the deadline"
    elapsed = time.monotonic() - start
    verdict = VERDICTS.get(code, "hung" if code == -1 else f"exit {code}")
    run_dir = os.path.realpath(os.path.join(own_store, "latest"))
    anomaly = None
    results_path = os.path.join(run_dir, "results.json")
    if verdict == "invalid" and os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as fh:
            anomaly = first_anomaly_seconds(json.load(fh))
    errors, recoveries = nemesis_trouble(run_dir)
    lines = stderr.strip().splitlines()
    error_line = lines[-1] if lines and verdict not in ("valid", "invalid", "unknown") else ""
    return RunResult(seed, verdict, anomaly, run_dir, elapsed, errors, recoveries, error_line)


def describe(result: RunResult) -> str:
    shown = f", first anomaly at {result.anomaly:.1f}s" if result.anomaly is not None else ""
    trouble = (f", {result.nemesis_errors} nemesis error(s)" if result.nemesis_errors else "") + \
        (f", {result.recoveries} toxiproxy recovery event(s)" if result.recoveries else "")
    tail = f": {result.error_line}" if result.error_line else ""
    return f"  seed {result.seed}: {result.verdict}{shown}{trouble} ({result.elapsed:.0f}s) {result.run_dir}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=1, help="runs at the same time (default 1)")
    parser.add_argument("--seed-base", type=int, default=1000)
    parser.add_argument("--expect", choices=("valid", "invalid"), default=None,
                        help="the verdict a correct (valid) or buggy (invalid) system should get; "
                             "the exit code is 1 when any run got something else")
    parser.add_argument("--store", default=None, help="results root (default: a temporary directory)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="run only shard I of N of the seeds (every N-th from the I-th)")
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then `faultbed run` flags")
    ns = parser.parse_args(argv)
    run_args = [a for a in ns.run_args if a != "--"]
    try:
        shard = parse_shard(ns.shard) if ns.shard is not None else WHOLE
    except FaultbedError as exc:
        parser.error(f"--shard: {exc}")
    seeds = shard.pick(range(ns.seed_base, ns.seed_base + ns.runs))
    store = ns.store or tempfile.mkdtemp(prefix="faultbed-campaign-")
    part = f", shard {shard}: {len(seeds)} of them" if shard != WHOLE else ""
    print(f"campaign: {ns.runs} runs{part} ({ns.parallel} at a time) of `faultbed run {' '.join(run_args)}`, "
          f"store {store}", flush=True)
    results: list[RunResult] = []
    with ThreadPoolExecutor(max_workers=max(1, ns.parallel)) as pool:
        futures = [pool.submit(run_once, run_args, seed, store) for seed in seeds]
        for future in futures:
            result = future.result()
            results.append(result)
            print(describe(result), flush=True)
    return summarize(results, ns.expect)


def summarize(results: list[RunResult], expect: str | None) -> int:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.verdict] = counts.get(result.verdict, 0) + 1
    anomalies = [r.anomaly for r in results if r.anomaly is not None]
    shown = ["valid", "invalid", "unknown", "error"] + sorted(set(counts) - {"valid", "invalid", "unknown", "error"})
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in shown)
    median = f"; median first anomaly at {statistics.median(anomalies):.1f}s" if anomalies else ""
    verdicts = sum(counts.get(v, 0) for v in ("valid", "invalid", "unknown"))
    print(f"campaign result: {summary} of {len(results)}{median}", flush=True)
    print(f"  verdicts {verdicts}, errors {len(results) - verdicts}, "
          f"nemesis errors {sum(r.nemesis_errors for r in results)} in "
          f"{sum(1 for r in results if r.nemesis_errors)} run(s), toxiproxy recoveries "
          f"{sum(r.recoveries for r in results)}", flush=True)
    if expect is None:
        return 0
    wrong = [r for r in results if r.verdict != expect]
    if expect == "valid":
        print(f"  false alarms (invalid): {counts.get('invalid', 0)}", flush=True)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
