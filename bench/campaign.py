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
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from faultbed.campaign import RUN_TIMEOUT_EXTRA, RunResult, run_once
from faultbed.errors import FaultbedError
from faultbed.shard import WHOLE, parse_shard


def describe(result: RunResult) -> str:
    shown = f", first anomaly at {result.anomaly:.1f}s" if result.anomaly is not None else ""
    trouble = (f", {result.nemesis_errors} nemesis error(s)" if result.nemesis_errors else "") + \
        (f", {result.recoveries} toxiproxy recovery event(s)" if result.recoveries else "")
    tail = f": {result.error_line}" if result.error_line else (f" [{result.findings}]" if result.findings else "")
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
    parser.add_argument("--hang-after", type=float, default=RUN_TIMEOUT_EXTRA, metavar="SECONDS",
                        help="a run still going this long after its time limit is hung: stopped, "
                             f"recorded as `hung` (default {RUN_TIMEOUT_EXTRA:g})")
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then `faultbed run` flags")
    ns = parser.parse_args(argv)
    run_args = [a for a in ns.run_args if a != "--"]
    if not 0 < ns.hang_after < float("inf"):
        parser.error("--hang-after: give a positive number of seconds")
    try:
        shard = parse_shard(ns.shard) if ns.shard is not None else WHOLE
    except FaultbedError as exc:
        parser.error(f"--shard: {exc}")
    seeds = shard.pick(range(ns.seed_base, ns.seed_base + ns.runs))
    store = ns.store or tempfile.mkdtemp(prefix="faultbed-campaign-")
    part = f", shard {shard}: {len(seeds)} of them" if shard != WHOLE else ""
    print(f"campaign: {ns.runs} runs{part} ({ns.parallel} at a time) of `faultbed run {' '.join(run_args)}`, "
          f"store {store}", flush=True)
    return summarize(run_seeds(run_args, seeds, ns.parallel, store, ns.hang_after), ns.expect)


def run_seeds(run_args: list[str], seeds: Sequence[int], parallel: int, store: str,
              hang_after: float = RUN_TIMEOUT_EXTRA) -> list[RunResult]:
    """One run per seed, `parallel` at a time, each described as it ends (in seed order)."""
    results: list[RunResult] = []
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [pool.submit(run_once, run_args, seed, store, hang_after) for seed in seeds]
        for future in futures:
            result = future.result()
            results.append(result)
            print(describe(result), flush=True)
    return results


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
