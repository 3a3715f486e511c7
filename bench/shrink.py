"""Shrink a failing run and replay the minimal one N times: the numbers of `faultbed shrink`.

    python -m bench.shrink --replays 10 -- --bug stale-reads --nemesis partition --time-limit 30 \
        --nemesis-interval 3 --seed 4101

Runs `faultbed run` with the given flags (it must fail), `faultbed shrink` on it, then
`faultbed replay` of the minimal run `--replays` times, and prints one line: faults and
seconds before and after, the shrink's runs and wall time, and how many replays failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

RUN_TIMEOUT = 600.0


def faultbed(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faultbed", *args], capture_output=True, text=True,
                          timeout=timeout)


def line_value(output: str, prefix: str) -> str | None:
    return next((line[len(prefix):].strip() for line in output.splitlines() if line.startswith(prefix)), None)


def runs_line(output: str) -> str:
    """`8 runs, 134s` from the shrink's summary."""
    return next((line.strip() for line in output.splitlines() if " runs, " in line), "?")


def faults_and_seconds(run_dir: str) -> tuple[int, float]:
    with open(os.path.join(run_dir, "schedule.json"), encoding="utf-8") as fh:
        schedule = json.load(fh)
    with open(os.path.join(run_dir, "spec.json"), encoding="utf-8") as fh:
        spec = json.load(fh)
    return sum(e["action"] == "start" for e in schedule["events"]), float(spec["time_limit"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--tries", default="2")
    parser.add_argument("--needed", default="2")
    parser.add_argument("--budget", default="900")
    parser.add_argument("--store", default=None, help="results root (default: a new temporary directory)")
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then `faultbed run` flags")
    args = parser.parse_args(argv)
    run_args = [a for a in args.run_args if a != "--"]
    store = args.store or tempfile.mkdtemp(prefix="faultbed-shrink-bench-")
    proc = faultbed("run", *run_args, "--quiet", "--store", store)
    original = line_value(proc.stdout, "results:")
    if proc.returncode != 1 or original is None:
        print(f"the run did not fail (exit {proc.returncode}); nothing to shrink: {proc.stderr.strip()[-200:]}")
        return 2
    started = time.monotonic()
    proc = faultbed("shrink", original, "--tries", args.tries, "--needed", args.needed, "--budget", args.budget,
                    timeout=float(args.budget) + RUN_TIMEOUT)
    seconds = time.monotonic() - started
    minimal = line_value(proc.stdout, "results:")
    if proc.returncode != 1 or minimal is None:
        print(f"shrink found no minimal failing run (exit {proc.returncode}): {proc.stderr.strip()[-200:]}")
        return 2
    failed = sum(faultbed("replay", minimal, "--quiet", "--store", os.path.join(store, "replays")).returncode == 1
                 for _ in range(args.replays))
    before, after = faults_and_seconds(original), faults_and_seconds(minimal)
    print(f"{' '.join(run_args)}: {before[0]} faults, {before[1]:g}s -> {after[0]} faults, {after[1]:g}s "
          f"({runs_line(proc.stdout)}, {seconds:.0f}s wall); "
          f"replays invalid {failed}/{args.replays}; minimal run {minimal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
