"""`faultbed run`: one test against a real cluster, checked and stored."""

from __future__ import annotations

import argparse
import json
import os
import sys

from faultbed import plugins
from faultbed.checkers.result import exit_code, first_anomaly_words, trace_anomaly, verdict_word
from faultbed.cluster.systems import SYSTEM_OPTIONS
from faultbed.cluster.systems.maelstrom import spec_fields as maelstrom_spec_fields
from faultbed.errors import FaultbedError
from faultbed.interrupts import stop_on_interrupt
from faultbed.progress import ProgressDisplay
from faultbed.plan import resolve
from faultbed.runner import Progress, RunInterrupted, RunOutcome, run
from faultbed.spec import LIMITS, MAX_FAULTS, MAX_PLANNED_OPS, OPTION_FLAGS, OPTION_LIMITS, TestSpec, flag

HELP = "run a test: a real cluster, concurrent clients, faults, then a checked history"

DEFAULTS = TestSpec()


def _nemesis_epilog() -> str:
    from faultbed.nemesis.faults import NEMESIS_SYNTAX, fault_help

    lines = ["fault kinds for --nemesis (comma-separated, or none):"]
    lines += [f"  {name:<18} {description}" for name, description in fault_help().items()]
    return "\n".join(lines) + "\n\n" + "\n".join(NEMESIS_SYNTAX)


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that make a TestSpec (shared with other commands)."""
    d = DEFAULTS
    parser.add_argument("--system", default=d.system,
                        help=f"system under test: a name from `faultbed list`, a system file (./mykv.toml) "
                             f"or module:attribute (default {d.system})")
    parser.add_argument("--bin", metavar="PATH", default=None,
                        help="run your own Maelstrom-protocol program as the system (docs/MAELSTROM.md); "
                             "with --workload echo, unique-ids, broadcast, g-set, g-counter, pn-counter or lin-kv")
    parser.add_argument("--bin-arg", action="append", default=[], metavar="ARG",
                        help="an argument for the --bin program (repeatable)")
    parser.add_argument("--backend", default=d.backend, help="a backend from `faultbed list` (default local)")
    parser.add_argument("--nodes", type=int, default=d.nodes, help=f"cluster size (default {d.nodes})")
    parser.add_argument("--workload", default=d.workload, help=f"a workload from `faultbed list` (default {d.workload})")
    parser.add_argument("--nemesis", default=",".join(d.nemesis),
                        help="fault kinds, comma-separated, or none (default partition)")
    parser.add_argument("--nemesis-interval", type=float, default=d.nemesis_interval,
                        help=f"seconds between a fault's start and stop (default {d.nemesis_interval:g})")
    parser.add_argument("--partition-mode", choices=("blackhole", "reject"), default=d.partition_mode)
    parser.add_argument("--time-limit", type=float, default=d.time_limit, help="seconds of main phase (default 30)")
    parser.add_argument("--rate", type=float, default=d.rate, help="total ops/s, 0 = unlimited (default 100)")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="client workers (default 10)")
    parser.add_argument("--keys", type=int, default=d.keys, help="keys the workload uses (default 8)")
    parser.add_argument("--op-timeout", type=float, default=d.op_timeout,
                        help="seconds before an operation's outcome is unknown (info) (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="seed of everything random (default: new)")
    parser.add_argument("--bug", action="append", default=[], metavar="NAME",
                        help="plant a bug in the system (repeatable)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a choice the system offers (repeatable; `faultbed list systems` shows them)")
    parser.add_argument("--disk-writeback", type=float, default=0.0, metavar="SECONDS",
                        help="power-loss: un-fsynced data older than this survives anyway, as the kernel's "
                             "flusher would write it back (default 0: nothing un-fsynced survives)")
    parser.add_argument("--hosts", metavar="FILE",
                        help="the ssh backend's inventory: hosts and which node runs where (docs/REMOTE.md)")
    parser.add_argument("--store", default=d.store, help="results directory root (default store)")


def limits_epilog() -> str:
    """The documented range of every numeric flag (checked before anything starts)."""
    lines = ["numeric flags (finite numbers; checked before anything starts or is stored):"]
    lines += [f"  {flag(name):<20} {limit.describe()}" for name, limit in LIMITS.items()]
    lines += [f"  {OPTION_FLAGS[name]:<20} {limit.describe()}" for name, limit in OPTION_LIMITS.items()
              if name in OPTION_FLAGS]
    lines.append(f"  and --rate x --time-limit <= {MAX_PLANNED_OPS:,}, --time-limit / --nemesis-interval "
                 f"<= {MAX_FAULTS:,}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--junit", metavar="FILE",
                        help="also write the verdict as JUnit XML (its directory must exist)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.epilog = limits_epilog()
    try:
        parser.epilog += "\n\n" + _nemesis_epilog()
    except ImportError:
        pass


def spec_from_args(args: argparse.Namespace) -> TestSpec:
    import random

    from faultbed.nemesis.faults import split_nemesis

    nemesis = split_nemesis(args.nemesis)
    system = args.system
    if plugins.is_system_file(system):  # replay must find it from anywhere
        system = os.path.abspath(system)
    options = options_from_args(args)
    if args.bin_arg and args.bin is None:
        raise FaultbedError("--bin-arg is an argument for the --bin program: give --bin PATH too")
    if args.bin is not None:
        if system != DEFAULTS.system:
            raise FaultbedError("--bin runs your program as the system: drop --system")
        fields = maelstrom_spec_fields(args.bin, args.bin_arg)
        system = fields["system"]
        options.update(fields["options"])
    return TestSpec(
        system=system, backend=args.backend, nodes=args.nodes, workload=args.workload,
        nemesis=nemesis, nemesis_interval=args.nemesis_interval, partition_mode=args.partition_mode,
        time_limit=args.time_limit, rate=args.rate, concurrency=args.concurrency, keys=args.keys,
        op_timeout=args.op_timeout, seed=args.seed if args.seed is not None else random.randrange(2**31),
        bugs=tuple(args.bug), store=args.store, options=options)


def options_from_args(args: argparse.Namespace) -> dict[str, object]:
    """spec.options from the flags: --disk-writeback, and --option NAME=VALUE under "system"."""
    options: dict[str, object] = {"diskfs_writeback": args.disk_writeback} if args.disk_writeback else {}
    chosen: dict[str, str] = {}
    for text in args.option:
        name, equals, value = text.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise FaultbedError(f"--option wants NAME=VALUE, not {text[:40]!r}")
        chosen[name.strip()] = value.strip()
    if chosen:
        options[SYSTEM_OPTIONS] = chosen
    if getattr(args, "hosts", None):  # absolute, so that replay finds it from anywhere
        options["hosts"] = os.path.abspath(args.hosts)
    return options


def execute(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    return run_and_report(spec, quiet=args.quiet, junit=args.junit)[0]


def run_and_report(spec: TestSpec, quiet: bool = False, junit: str | None = None,
                   schedule: object = None) -> tuple[int, RunOutcome | None]:
    """Run, print the summary; the exit code and the outcome (None if interrupted).

    After a first Ctrl-C or SIGTERM, later ones are ignored until the process exits (with 130).
    """
    with stop_on_interrupt(until_exit=True):
        return _run_and_report(spec, quiet, junit, schedule)


def _run_and_report(spec: TestSpec, quiet: bool, junit: str | None,
                    schedule: object) -> tuple[int, RunOutcome | None]:
    progress = Progress()
    plan = resolve(spec)  # a spec that cannot run says so in one line, before anything is printed or started
    if junit:
        from faultbed.junit import check_writable
        check_writable(junit)  # a typo in --junit is found before the run, not after it
    print(f"faultbed: {spec.system} {spec.workload} on {spec.backend}, {spec.nodes} nodes, "
          f"nemesis {','.join(spec.nemesis) or 'none'}, {spec.time_limit:g}s, seed {spec.seed}"
          + (f", bugs {','.join(spec.bugs)}" if spec.bugs else "")
          + "".join(f", {name}={value}" for name, value in (spec.options.get(SYSTEM_OPTIONS) or {}).items()),
          file=sys.stderr)
    try:
        if quiet:
            outcome = run(spec, schedule=schedule, progress=progress, plan=plan)  # type: ignore[arg-type]
        else:
            with ProgressDisplay(progress):
                outcome = run(spec, schedule=schedule, progress=progress, plan=plan)  # type: ignore[arg-type]
    except RunInterrupted as exc:
        if exc.leftovers:
            print(f"faultbed: interrupted; could NOT stop {'; '.join(exc.leftovers)} (`faultbed gc` removes them); "
                  f"history kept: faultbed check {exc.run_dir}", file=sys.stderr)
        else:
            print(f"faultbed: interrupted; everything stopped, history kept: faultbed check {exc.run_dir}",
                  file=sys.stderr)
        return 130, None
    except FaultbedError as exc:
        if junit:  # CI still gets a report that says why nothing ran
            from faultbed.junit import write_junit_error
            try:
                write_junit_error(spec, str(exc), junit)
            except OSError as error:
                print(f"faultbed: cannot write {junit}: {error.strerror}", file=sys.stderr)
        raise
    print_summary(outcome)
    if junit:
        from faultbed.junit import write_junit
        try:
            write_junit(outcome, junit)
        except OSError as exc:  # the verdict is stored and printed already; CI must still see the report is missing
            raise FaultbedError(f"cannot write the JUnit report {junit}: {exc.strerror}; the verdict "
                                f"({verdict_word(outcome.valid)}) is kept in {outcome.run_dir}") from exc
    return exit_code(outcome.valid), outcome


def print_summary(outcome: RunOutcome) -> None:
    counts = outcome.counts
    print(f"verdict: {verdict_word(outcome.valid)}")
    for result in outcome.results:
        print(f"  {result.headline()}")
    print(f"  ops: {counts['ok']} ok, {counts['fail']} fail, {counts['info']} info")
    for result in outcome.results:
        first = result.details.get("first_anomaly")
        if result.valid is False and isinstance(first, dict):
            print(f"{first_anomaly_words(first)} at {first['time_ms'] / 1000:.2f}s: {describe_operation(first)}")
    print(f"results: {outcome.run_dir}")
    viz = next((r.details.get("visualization") for r in outcome.results if r.details.get("visualization")), None)
    if viz:  # named like the results directory above (the checker writes it by its absolute path)
        inside = os.path.relpath(viz, os.path.abspath(outcome.run_dir))
        print(f"visualization: {viz if inside.startswith(os.pardir) else os.path.join(outcome.run_dir, inside)}")
    print(f"replay: {outcome.replay_command}")


def describe_operation(op: dict) -> str:
    """`read k0 -> 2 (event 1194, node n5)` from a checker's first_anomaly (or a trace's violation)."""
    said = trace_anomaly(op)
    if said is not None:
        return said
    text = f"{op.get('f')} {op.get('key')}" if op.get("key") is not None else str(op.get("f"))
    if op.get("value") is not None:
        text += f" {json.dumps(op['value'])}"
    if op.get("output") is not None and op.get("f") == "read":
        text += f" -> {json.dumps(op['output'])}"
    return text + (f" ({op['origin']})" if op.get("origin") else "")
