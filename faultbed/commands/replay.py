"""`faultbed replay RUN_DIR`: the same spec, seed, schedule and operation plan, run again."""

from __future__ import annotations

import argparse
import filecmp
import os
import sys

from faultbed.checkers.result import verdict_word
from faultbed import store
from faultbed.commands.run import run_and_report
from faultbed.errors import FaultbedError
from faultbed.plan import resolve
from faultbed.run_files import read_schedule, read_spec, stored_verdict
from faultbed.spec import TestSpec

HELP = "run a stored test again with the same seed, fault schedule and operation plan"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a results directory (or store/latest)")
    parser.add_argument("--store", help="results root for the new run (default: the store holding the original)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--junit", metavar="FILE", help="also write the verdict as JUnit XML")


def execute(args: argparse.Namespace) -> int:
    original = os.path.realpath(args.run_dir)
    if not os.path.isfile(os.path.join(original, store.SPEC)):
        raise FaultbedError(f"{args.run_dir}: not a results directory (no {store.SPEC})")
    spec = read_spec(original)  # every input validated before anything runs or is stored
    # a run merged from another host replays into the store that holds it now, not the path it had there
    spec = spec.replace(store=args.store or store.home_store(original, spec.store))
    spec = _system_file(spec, original)
    try:  # what the spec names (system, its options, bugs, faults) must exist still: said of spec.json
        resolve(spec)
    except FaultbedError as exc:
        raise FaultbedError(f"{os.path.join(original, store.SPEC)}: {exc}") from exc
    schedule = read_schedule(original)
    before = stored_verdict(original)
    code, outcome = run_and_report(spec, quiet=args.quiet, junit=args.junit, schedule=schedule)
    if outcome is None:
        return code
    replayed = outcome.run_dir
    same_schedule = filecmp.cmp(os.path.join(original, store.SCHEDULE), os.path.join(replayed, store.SCHEDULE),
                                shallow=False)
    same_plan = filecmp.cmp(os.path.join(original, store.PLAN), os.path.join(replayed, store.PLAN), shallow=False)
    after = outcome.valid
    print(f"replay: schedule {'identical' if same_schedule else 'DIFFERENT'}, "
          f"operation plan {'identical' if same_plan else 'DIFFERENT'}")
    if before is None:
        print(f"replay: original has no verdict; this run: {verdict_word(after)}")
    else:
        word = "reproduced" if before == after else "NOT reproduced"
        print(f"replay: verdict {word} (original {verdict_word(before)}, now {verdict_word(after)})")
    sys.stdout.flush()
    return code


def _system_file(spec: TestSpec, original: str) -> TestSpec:
    """A run of a system file replays the file at its absolute path; gone, the run's own copy."""
    copy = os.path.join(original, store.SYSTEM_FILE)
    if not os.path.isfile(copy):
        return spec
    if not os.path.isfile(spec.system):
        print(f"replay: {spec.system} is gone; using the run's copy {copy}", file=sys.stderr)
        return spec.replace(system=copy)
    if not filecmp.cmp(spec.system, copy, shallow=False):
        print(f"replay: {spec.system} changed since the run (the run's copy: {copy})", file=sys.stderr)
    return spec
