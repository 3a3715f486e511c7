"""`faultbed shrink RUN_DIR`: the fewest faults and the shortest run that still fail like RUN_DIR.

Every candidate is a real run (the same spec and seed, a smaller schedule), repeated to
tolerate nondeterminism; the runs go to their own store. Exit 1 when a minimal failing run
was found (its results directory is printed with the command that replays it), 2 when the
failure did not reproduce within the budget, 3 when RUN_DIR is not a failing run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from faultbed import store
from faultbed.checkers.result import EXIT_INVALID, EXIT_UNKNOWN
from faultbed.commands.replay import _system_file
from faultbed.errors import FaultbedError
from faultbed.interrupts import stop_on_interrupt
from faultbed.nemesis.schedule import Schedule
from faultbed.run_files import read_results, read_schedule, read_spec
from faultbed.shrink import Attempt, Policy, Shrinker, ShrinkResult, Trial
from faultbed.spec import TestSpec

HELP = "shrink a failing run to the fewest faults and the shortest run that still fail"
SUMMARY = "shrink.json"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a failing results directory (or store/latest)")
    parser.add_argument("--tries", type=int, default=3, help="runs of each candidate, at most (default 3)")
    parser.add_argument("--needed", type=int, default=2,
                        help="invalid runs out of --tries for a candidate to count as failing (default 2); "
                             "for a bug that shows in some runs only, --needed = --tries keeps "
                             "candidates that fail reliably")
    parser.add_argument("--budget", type=float, default=900.0,
                        help="seconds for the whole search; then the smallest failing candidate so far "
                             "(default 900)")
    parser.add_argument("--confirm", type=int, default=0, metavar="N",
                        help="replay the minimal candidate N more times at the end (default 0: not)")
    parser.add_argument("--confirm-needed", type=int, default=None, metavar="K",
                        help="keep it only when K of those N fail, else confirm the next larger failing "
                             "candidate (default: 8 in 10 of N, rounded up)")
    parser.add_argument("--store", help="where the candidates' runs go (default: STORE/shrink/<run name>)")


def execute(args: argparse.Namespace) -> int:
    original = os.path.realpath(args.run_dir)
    if not os.path.isfile(os.path.join(original, store.SPEC)):
        raise FaultbedError(f"{args.run_dir}: not a results directory (no {store.SPEC})")
    if not (1 <= args.needed <= args.tries <= 100):
        raise FaultbedError("--needed and --tries: 1 <= --needed <= --tries <= 100")
    confirm_needed = args.confirm_needed if args.confirm_needed is not None else -(-args.confirm * 8 // 10)
    if not (0 <= confirm_needed <= args.confirm <= 100):
        raise FaultbedError("--confirm and --confirm-needed: 0 <= --confirm-needed <= --confirm <= 100")
    if not 0 < args.budget <= 7 * 86_400:
        raise FaultbedError("--budget must be between 0 (excluded) and 604800 seconds")
    spec = _system_file(read_spec(original), original)
    schedule = read_schedule(original)
    if not os.path.isfile(os.path.join(original, store.RESULTS)):
        raise FaultbedError(f"{args.run_dir}: has no verdict (no {store.RESULTS}): nothing to shrink")
    results = read_results(original)
    if results["valid"] is not False:
        raise FaultbedError(f"{args.run_dir}: the run is not invalid (verdict {results['valid']}): nothing to shrink")
    trials = args.store or os.path.join(os.path.dirname(os.path.dirname(original)), "shrink",
                                        os.path.basename(original))
    spec = spec.replace(store=trials)
    policy = Policy(tries=args.tries, needed=args.needed, budget=args.budget, confirm=args.confirm,
                    confirm_needed=confirm_needed)
    print(f"shrink: {len(schedule.events) // 2} fault(s), {spec.time_limit:g}s; a candidate fails when "
          f"{policy.needed} of {policy.tries} runs are invalid; budget {policy.budget:g}s; runs in {trials}",
          file=sys.stderr)
    with stop_on_interrupt(until_exit=True):
        try:
            result = Shrinker(spec, schedule, _run_once, policy, anomaly=first_anomaly(results)).shrink()
        except _Interrupted as exc:
            print(f"shrink: interrupted; everything stopped (last run: {exc.run_dir})", file=sys.stderr)
            return 130
    _write_summary(trials, original, result)
    return _print_result(result, schedule)


class _Interrupted(Exception):
    def __init__(self, run_dir: str) -> None:
        super().__init__(run_dir)
        self.run_dir = run_dir


def _run_once(spec: TestSpec, schedule: Schedule) -> Trial:
    """One real run of a candidate, quietly; a setup failure counts as a run that did not fail."""
    from faultbed.runner import RunInterrupted, run

    try:
        outcome = run(spec, schedule=schedule)
    except RunInterrupted as exc:
        raise _Interrupted(exc.run_dir) from None
    except FaultbedError as exc:
        print(f"shrink: a run could not be done ({exc}); counted as not failing", file=sys.stderr)
        return Trial("unknown", "")
    anomaly = first_anomaly({"results": [r.to_json() for r in outcome.results]})
    print(f"shrink:   {len(schedule.events) // 2} fault(s), {spec.time_limit:g}s -> "
          f"{'invalid' if outcome.valid is False else outcome.valid}", file=sys.stderr)
    return Trial(outcome.valid, outcome.run_dir, anomaly)


def first_anomaly(results: dict) -> float | None:
    """Seconds into the run of the earliest first anomaly any checker gave, if any gave one."""
    times = [r["details"]["first_anomaly"]["time_ms"] / 1000 for r in results.get("results") or []
             if isinstance((r.get("details") or {}).get("first_anomaly"), dict)
             and isinstance(r["details"]["first_anomaly"].get("time_ms"), (int, float))]
    return min(times) if times else None


def _print_result(result: ShrinkResult, original: Schedule) -> int:
    budget = " (budget spent)" if result.budget_spent else ""
    for confirmation in result.confirmations:
        failed = sum(t.valid is False for t in confirmation.trials)
        print(f"shrink: confirming {confirmation.candidate.describe()}: {failed} of {len(confirmation.trials)} "
              f"runs invalid{'' if confirmation.fails else ' (not enough)'}")
    if result.minimal is None and result.confirmations:
        print(f"shrink: no failing candidate failed often enough again ({result.runs} runs, {result.seconds:.0f}s)")
        return EXIT_UNKNOWN
    if result.minimal is None or result.run_dir is None:
        print(f"shrink: the failure did not reproduce in {result.runs} run(s), {result.seconds:.0f}s{budget}")
        return EXIT_UNKNOWN
    minimal = result.minimal
    print(f"shrink: {result.original.describe()}")
    print(f"    ->  {minimal.describe()}")
    print(f"  {result.runs} runs, {result.seconds:.0f}s{budget}")
    print("minimal schedule:")
    print(minimal.schedule(original).dumps())
    print(f"results: {result.run_dir}")
    print(f"replay: faultbed replay {result.run_dir}")
    return EXIT_INVALID


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {"candidate": attempt.candidate.describe(), "fails": attempt.fails,
            "runs": [{"valid": t.valid, "run_dir": t.run_dir} for t in attempt.trials]}


def _write_summary(root: str, original: str, result: ShrinkResult) -> None:
    """shrink.json in the candidates' store: every candidate tried, its runs and verdicts."""
    data = {
        "original": original, "minimal": result.minimal.describe() if result.minimal else None,
        "run_dir": result.run_dir, "runs": result.runs, "seconds": round(result.seconds, 1),
        "budget_spent": result.budget_spent,
        "attempts": [_attempt_json(a) for a in result.attempts],
        "confirmations": [_attempt_json(a) for a in result.confirmations]}
    try:
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, SUMMARY), "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
    except OSError as exc:
        log.warning("could not write %s in %s: %s", SUMMARY, root, exc)
