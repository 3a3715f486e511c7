"""`faultbed hunt -- RUN_FLAGS`: short runs within a budget, the fault mix adapting (faultbed/hunt.py).

Each round runs one hunt run (its nemesis chosen by the adaptive mix) and, beside it at
the same time on the same machine (or just after it, `--parallel 1`), one baseline run
with the plain random schedule (`--baseline`, same seed, same length): both sides get the
same number of runs and the same load. The report gives each side's detections per minute of test time, the
signal of every run and what each arm earned. Exit 1 when any run found an anomaly,
2 when none did but some were unknown, 0 when all were valid, 3 when no run could be
done (the first round's error line is shown).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from faultbed.campaign import RunResult, run_once
from faultbed.checkers.result import EXIT_ERROR, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID
from faultbed.errors import FaultbedError
from faultbed.hunt import FaultMix, Signal, signal_of
from faultbed.nemesis.faults import parse_fault, split_nemesis

HELP = "many short runs within a budget, the fault mix adapting toward interesting events; vs plain random"
DEFAULT_ARMS = "kill,partition,pause,latency,kill-in-flight,isolate-in-flight,latency-on-retry,kill-after-ack"
DEFAULT_BASELINE = "partition,kill"
OWN_FLAGS = ("--nemesis", "--time-limit", "--seed", "--store", "--quiet")
SUMMARY = "hunt.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=float, default=600.0,
                        help="seconds of wall time; no round starts after it is spent (default 600)")
    parser.add_argument("--run-time", type=float, default=10.0, help="time limit of each run (default 10)")
    parser.add_argument("--arms", default=DEFAULT_ARMS, help=f"nemesis entries to mix (default {DEFAULT_ARMS})")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help=f"the plain random nemesis run beside each hunt run (default {DEFAULT_BASELINE}); "
                             "none: no baseline")
    parser.add_argument("--parallel", type=int, choices=(1, 2), default=2,
                        help="2: the hunt run and its baseline at the same time (default); 1: one after the other")
    parser.add_argument("--seed-base", type=int, default=1, help="round i runs with seed SEED_BASE + i (default 1)")
    parser.add_argument("--store", default=None, help="results root (default store/hunt-<UTC time>)")
    parser.add_argument("run_args", nargs=argparse.REMAINDER,
                        help="-- then `faultbed run` flags (system, workload, bug, nodes, interval...)")


@dataclass(frozen=True)
class Round:
    number: int
    entries: tuple[str, ...]
    hunt: RunResult
    signal: Signal
    baseline: RunResult | None
    baseline_signal: Signal | None


def execute(args: argparse.Namespace) -> int:
    run_args = [a for a in args.run_args if a != "--"]
    clash = sorted({a.split("=")[0] for a in run_args} & set(OWN_FLAGS))
    if clash:
        raise FaultbedError(f"hunt chooses {', '.join(clash)} itself; leave them out of the run flags")
    if not 0 < args.budget <= 7 * 86_400 or not 1 <= args.run_time <= 3600:
        raise FaultbedError("--budget must be in (0, 604800] and --run-time in [1, 3600] seconds")
    arms = _entries(args.arms, "--arms")
    baseline = None if args.baseline.strip() == "none" else ",".join(_entries(args.baseline, "--baseline"))
    store = os.path.abspath(args.store or os.path.join("store", time.strftime("hunt-%Y%m%dT%H%M%SZ", time.gmtime())))
    mix = FaultMix(arms, random.Random(f"hunt:{args.seed_base}"))
    print(f"hunt: budget {args.budget:g}s, runs of {args.run_time:g}s, arms {','.join(arms)}; baseline "
          f"{baseline or 'none'}; `faultbed run {' '.join(run_args)}`; store {store}", flush=True)
    rounds: list[Round] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        while time.monotonic() - started < args.budget:
            seed = args.seed_base + len(rounds)
            entries = mix.choose()
            timed = [*run_args, "--time-limit", f"{args.run_time:g}"]
            hunt_run = pool.submit(run_once, [*timed, "--nemesis", ",".join(entries)], seed,
                                   os.path.join(store, "hunt"))
            base_run: Future[RunResult] | None = None
            if baseline:
                base_run = pool.submit(run_once, [*timed, "--nemesis", baseline], seed,
                                       os.path.join(store, "baseline"))
            result = hunt_run.result()
            base = base_run.result() if base_run is not None else None
            if not rounds and result.verdict == "error" and (base is None or base.verdict == "error"):
                print(f"hunt: the first run could not be done: {result.error_line}", file=sys.stderr)
                return EXIT_ERROR
            signal = signal_of(result.run_dir, args.run_time)
            mix.learn(entries, signal, result.verdict == "invalid")
            round_ = Round(len(rounds) + 1, entries, result, signal, base,
                           signal_of(base.run_dir, args.run_time) if base is not None else None)
            rounds.append(round_)
            print(_describe(round_), flush=True)
    elapsed = time.monotonic() - started
    sides = {"hunt": [r.hunt for r in rounds], "baseline": [r.baseline for r in rounds if r.baseline]}
    print(f"hunt over: {len(rounds)} round(s) in {elapsed:.0f}s; load average {_load()}")
    for name, results in sides.items():
        if results:
            print("  " + _side_line(name, results, args.run_time, baseline if name == "baseline" else "adaptive"))
    print("  arms (best first): entry, runs, detections, mean reward, mean credited signal/s")
    for row in mix.table():
        print(f"    {row['entry']:<22} {row['runs']:>3} {row['detections']:>3}  {row['reward']:.2f}  "
              f"{row['mean_score'] if row['mean_score'] is not None else '-'}")
    _write_summary(store, args, arms, baseline, rounds, mix, elapsed)
    verdicts = [r.verdict for results in sides.values() for r in results]
    if "invalid" in verdicts:
        return EXIT_INVALID
    return EXIT_UNKNOWN if any(v != "valid" for v in verdicts) else EXIT_VALID


def _entries(text: str, flag: str) -> list[str]:
    entries = list(split_nemesis(text))
    if not entries:
        raise FaultbedError(f"{flag}: at least one nemesis entry")
    for entry in entries:
        parse_fault(entry)  # one line for an unknown kind, before any run starts
    return entries


def _describe(round_: Round) -> str:
    def side(result: RunResult, signal: Signal) -> str:
        found = f" at {result.anomaly:.1f}s" if result.anomaly is not None else ""
        return (f"{result.verdict}{found}, signal {signal.score():.1f}/s (info {signal.info}, retries "
                f"{signal.retries}, pending at fault {signal.pending_at_fault}, leaders {signal.leader_changes})")
    line = f"  round {round_.number} seed {round_.hunt.seed}: hunt [{','.join(round_.entries)}] " \
           f"{side(round_.hunt, round_.signal)}"
    if round_.baseline is not None and round_.baseline_signal is not None:
        line += f" | baseline {side(round_.baseline, round_.baseline_signal)}"
    return line


def _side_line(name: str, results: list[RunResult], run_time: float, what: str | None) -> str:
    detected = [r for r in results if r.verdict == "invalid"]
    minutes = len(results) * run_time / 60
    anomalies = [r.anomaly for r in detected if r.anomaly is not None]
    median = f", median first anomaly {statistics.median(anomalies):.1f}s" if anomalies else ""
    others = {v: sum(1 for r in results if r.verdict == v) for v in {r.verdict for r in results} - {"invalid"}}
    rest = ", ".join(f"{n} {v}" for v, n in sorted(others.items()))
    return (f"{name} ({what}): {len(detected)}/{len(results)} runs found an anomaly in {minutes:.1f} min of "
            f"test time: {len(detected) / minutes if minutes else 0:.2f} per minute{median} ({rest})")


def _load() -> str:
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "?"


def _write_summary(store: str, args: argparse.Namespace, arms: list[str], baseline: str | None,
                   rounds: list[Round], mix: FaultMix, elapsed: float) -> None:
    def result_json(result: RunResult | None, signal: Signal | None) -> dict[str, Any] | None:
        if result is None or signal is None:
            return None
        return {"seed": result.seed, "verdict": result.verdict, "first_anomaly_s": result.anomaly,
                "run_dir": result.run_dir, "signal": signal.to_json()}

    data = {"budget": args.budget, "run_time": args.run_time, "arms": arms, "baseline": baseline,
            "elapsed": round(elapsed, 1), "load": _load(), "mix": mix.table(),
            "rounds": [{"round": r.number, "entries": list(r.entries), "hunt": result_json(r.hunt, r.signal),
                        "baseline": result_json(r.baseline, r.baseline_signal)} for r in rounds]}
    os.makedirs(store, exist_ok=True)
    with open(os.path.join(store, SUMMARY), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
