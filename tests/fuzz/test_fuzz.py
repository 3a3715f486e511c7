"""Fuzzing the edges (issue 17): generated bad histories, run files and flag values thrown at the commands.

Every outcome must keep the exit-code contract: 0, 1, 2 or 3, never a traceback, never a hang, and a
valid history next to a bad one is still checked. Where a verdict is involved, it is compared with the
exhaustive reference checker of tests/checkers/test_linearizable_properties.py.

The budget is FAULTBED_FUZZ_EXAMPLES generated inputs in all (default 200, for CI); set it to 1000 or
more for a full run, and FAULTBED_FUZZ_REPORT=FILE to get one JSON line per command invoked
(summarize with `python -m tests.fuzz.summary FILE`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faultbed.commands.run
import faultbed.commands.serve
from faultbed.cli import main
from faultbed.nemesis.schedule import generate_schedule
from faultbed.spec import TestSpec
from tests.checkers.test_linearizable_properties import SimOp, expected_verdict, mutated_histories, to_events
from tests.fuzz.inputs import (NASTY_TEXT, any_history, broken_document, faultbed_history, good_spec, json_values,
                               number_text, run_flags, string_run_flags)

EXAMPLES = int(os.environ.get("FAULTBED_FUZZ_EXAMPLES", "200"))
REPORT = os.environ.get("FAULTBED_FUZZ_REPORT")
COMMAND_SECONDS = 60  # a command that takes longer on these tiny inputs hangs


def budget(share: float) -> settings:
    return settings(max_examples=max(3, int(EXAMPLES * share)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


GOOD_HISTORY = ('{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 1}\n'
                '{"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "time": 2}\n'
                '{"type": "invoke", "process": 1, "f": "read", "key": "a", "time": 3}\n'
                '{"type": "ok", "process": 1, "f": "read", "key": "a", "value": 1, "time": 4}\n')
GOOD = "zz-good.jsonl"


class WouldRun(BaseException):
    """A command accepted its input and was about to start a cluster or a server (not done here)."""


class Hang(BaseException):
    """A command took longer than COMMAND_SECONDS."""


@dataclass(frozen=True)
class Outcome:
    code: int | None
    out: str
    err: str
    category: str  # verdict, clean error, accepted, internal error, hang

    def assert_contract(self, argv: list[str]) -> None:
        assert self.category in ("verdict", "clean error", "accepted"), (
            f"{self.category} (exit {self.code}) for faultbed {' '.join(a[:60] for a in argv)}\n{self.err[-2000:]}")


def _would_run(*args: Any, **kwargs: Any) -> Any:
    raise WouldRun()


def _hang(signum: int, frame: Any) -> None:
    raise Hang()


def invoke(test: str, argv: list[str]) -> Outcome:
    """`faultbed ARGV` in this process (runs and servers stopped before they start), classified."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    root.handlers.clear()  # the CLI's logging goes to this call's stderr
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.setitimer(signal.ITIMER_REAL, COMMAND_SECONDS)
    code: int | None = None
    category = ""
    try:
        with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
            patch.setattr(faultbed.commands.run, "run", _would_run)
            patch.setattr(faultbed.commands.serve, "_serve", _would_run)
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 3)
    except WouldRun:
        category = "accepted"
    except Hang:
        category = "hang"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        root.handlers[:] = saved_handlers
    if not category:
        category = _category(code, err.getvalue())
    outcome = Outcome(code, out.getvalue(), err.getvalue(), category)
    _record(test, argv, outcome)
    return outcome


def _category(code: int | None, err: str) -> str:
    if code == 255 or "Traceback" in err or "internal error" in err:
        return "internal error"
    if code == 3:
        return "clean error"
    if code in (0, 1, 2):
        return "verdict"
    return f"exit {code}"


def _record(test: str, argv: list[str], outcome: Outcome) -> None:
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"test": test, "category": outcome.category, "code": outcome.code,
                                 "argv": [a[:80] for a in argv]}) + "\n")


def children() -> set[int]:
    """Processes whose parent is this one (nothing a command starts may outlive it)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    before = children()
    yield
    assert children() - before == set(), "a command left a process running"


FORCED = st.lists(st.sampled_from([["--model", m] for m in ("kv", "register", "cas-register", "mutex",
                                                                 "multi-register", "fifo-queue")]
                                   + [["--format", f] for f in ("faultbed", "edn", "porcupine-etcd", "porcupine-kv")]
                                   + [["--json"], ["--initial", "0"], ["--initial", '{"x": 0}']]),
                   max_size=2).map(lambda pairs: [arg for pair in pairs for arg in pair])


@budget(0.35)
@given(any_history(), FORCED)
def test_bad_histories_are_clean_errors_and_never_stop_a_good_one(history: tuple[str, bytes],
                                                                   forced: list[str]) -> None:
    suffix, content = history
    with tempfile.TemporaryDirectory() as directory:
        bad = os.path.join(directory, f"bad{suffix}")
        Path(bad).write_bytes(content)
        Path(directory, GOOD).write_text(GOOD_HISTORY)
        alone = invoke("history", ["check", "--timeout", "10", *forced, bad])
        alone.assert_contract(["check", *forced, bad])
        together = invoke("history+good", ["check", "--timeout", "10", directory])
        together.assert_contract(["check", directory])
        assert f"valid    {directory}/{GOOD}" in together.out, together.out + together.err


@budget(0.15)
@given(mutated_histories(), st.sampled_from((0, 2**62, 2**63 - 1)))
def test_fuzzed_histories_through_check_agree_with_the_exhaustive_reference(ops: list[SimOp], end: int) -> None:
    """Go's own JSONL reader (what `faultbed check` uses) against the reference, also at int64's end."""
    if end:
        latest = max(max(op.call, op.ret if op.type == "ok" else op.call) for op in ops)
        ops = [SimOp(op.f, op.key, op.value, op.call - latest + end, op.ret - latest + end, op.type)
               if op.type == "ok" else SimOp(op.f, op.key, op.value, op.call - latest + end,
                                             min(op.ret - latest + end, 2**63 - 1), op.type) for op in ops]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "history.jsonl")
        Path(path).write_text("".join(json.dumps(event) + "\n" for event in to_events(ops)))
        outcome = invoke("reference", ["check", path])
    outcome.assert_contract(["check", path])
    verdict = {0: True, 1: False, 2: "unknown"}.get(outcome.code or 0)
    assert verdict == expected_verdict(ops), f"{ops}: faultbed check says {outcome.out}"


def _edn(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, list):
        return "[" + " ".join(_edn(v) for v in value) + "]"
    return json.dumps(value)


@budget(0.05)
@given(mutated_histories())
def test_fuzzed_jepsen_edn_histories_agree_with_the_exhaustive_reference(ops: list[SimOp]) -> None:
    """One register in Jepsen's EDN (the entry order is the time); knossos reads a nil read as no constraint."""
    ops = [replace(op, key="a") for op in ops]
    entries = []
    for event in to_events(ops):
        value = None if event["type"] == "invoke" and event["f"] == "read" else event["value"]
        entries.append(f"{{:type :{event['type']}, :process {event['process']}, :f :{event['f']}, "
                       f":value {_edn(value)}}}")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "history.edn")
        Path(path).write_text("[" + "\n ".join(entries) + "]\n")
        outcome = invoke("reference edn", ["check", path])
    outcome.assert_contract(["check", path])
    constraining = [op for op in ops if not (op.f == "read" and op.type == "ok" and op.value is None)]
    verdict = {0: True, 1: False, 2: "unknown"}.get(outcome.code or 0)
    assert verdict == expected_verdict(constraining), f"{ops}: faultbed check says {outcome.out}"


def _stored_run(directory: str, workload: str = "register") -> Path:
    run_dir = Path(directory, "store", "raftkv-register", "20260101T000000Z")
    run_dir.mkdir(parents=True)
    system = "broker" if workload == "queue" else "raftkv"
    spec = TestSpec(store=str(Path(directory, "store")), time_limit=1, seed=3, system=system, workload=workload)
    (run_dir / "spec.json").write_text(spec.dumps())
    (run_dir / "schedule.json").write_text(generate_schedule(spec, ["n1", "n2", "n3", "n4", "n5"]).dumps())
    (run_dir / "history.jsonl").write_text("")  # a run interrupted before its first operation
    return run_dir


@budget(0.15)
@given(st.data())
def test_bad_run_files_in_replay_and_report_are_clean_errors(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        run_dir = _stored_run(directory, data.draw(st.sampled_from(("register", "idempotency", "queue"))))
        target = data.draw(st.sampled_from(("spec.json", "schedule.json", "results.json", "history.jsonl")))
        if target == "history.jsonl":
            content = data.draw(faultbed_history())
        else:
            good = (good_spec(directory) if target == "spec.json" else
                    json.loads((run_dir / "schedule.json").read_text()) if target == "schedule.json" else
                    {"valid": True, "counts": {"ok": 1}, "results": [{"checker": "stats", "valid": True,
                                                                        "details": {}}]})
            content = data.draw(broken_document(good))
        (run_dir / target).write_bytes(content)
        command = data.draw(st.sampled_from(("replay", "replay", "check", "check", "report")))  # report plots: slow
        argv = [command, str(run_dir)]
        outcome = invoke(f"{command} {target}", argv)
        outcome.assert_contract(argv)
        if command in ("report", "check") and target != "history.jsonl":
            assert outcome.code in (0, 2, 3)  # check: an empty history is unknown; nothing here is an anomaly


@budget(0.25)
@given(st.data())
def test_bad_flag_values_are_clean_errors(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, GOOD).write_text(GOOD_HISTORY)
        command = data.draw(st.sampled_from(("run", "run", "check", "serve", "report", "replay", "shrink")))
        if command == "run":
            flags = data.draw(run_flags() | string_run_flags())
            argv = ["run", "--quiet", "--store", os.path.join(directory, "store"), *flags]
            if data.draw(st.booleans()):
                argv += ["--junit", data.draw(st.sampled_from([os.path.join(directory, "no", "such", "j.xml"),
                                                               directory, "/dev/null/j.xml",
                                                               os.path.join(directory, "j.xml")]))]
        elif command == "check":
            argv = ["check", directory]
            if data.draw(st.booleans()):
                argv += ["--timeout", data.draw(number_text)]
            if data.draw(st.booleans()):
                argv += ["--initial", data.draw(st.sampled_from(NASTY_TEXT) | json_values.map(
                    lambda v: json.dumps(v)))]
            if data.draw(st.booleans()):
                argv += ["--model", data.draw(st.sampled_from(["kv", "mutex", "x", ""]))]
            if data.draw(st.booleans()):
                argv += ["--memory-limit", data.draw(number_text)]
        elif command == "serve":
            argv = ["serve", "--store", directory, "--port", data.draw(number_text)]
        else:
            argv = [command, data.draw(st.sampled_from([directory, os.path.join(directory, GOOD), "/dev/null",
                                                        os.path.join(directory, "missing"), "", "\x01"]))]
            if command == "shrink" and data.draw(st.booleans()):
                argv += [data.draw(st.sampled_from(["--budget", "--tries", "--needed"])), data.draw(number_text)]
        outcome = invoke(f"flags {command}", argv)
        outcome.assert_contract(argv)


@budget(0.05)
@given(any_history())
def test_the_real_command_line_keeps_the_contract(history: tuple[str, bytes]) -> None:
    """As a user runs it: a subprocess, its real exit code and stderr, and nothing left behind."""
    suffix, content = history
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, f"bad{suffix}").write_bytes(content)
        Path(directory, GOOD).write_text(GOOD_HISTORY)
        argv = ["check", "--timeout", "10", directory]
        try:
            proc = subprocess.run([sys.executable, "-m", "faultbed", *argv], capture_output=True, text=True,
                                  timeout=COMMAND_SECONDS, errors="replace")
        except subprocess.TimeoutExpired:
            outcome = Outcome(None, "", "", "hang")
        else:
            outcome = Outcome(proc.returncode, proc.stdout, proc.stderr, _category(proc.returncode, proc.stderr))
        _record("subprocess", argv, outcome)
        outcome.assert_contract(argv)
        assert f"valid    {directory}/{GOOD}" in outcome.out
