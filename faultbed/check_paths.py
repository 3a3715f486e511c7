"""`faultbed check PATH...` (faultbed/commands/check.py has its arguments): find the histories, check
them (porcupine etcd logs and faultbed JSONL files queued in Go, the rest by Python threads), one line each."""

from __future__ import annotations

import argparse
import json
import os
import queue
import stat
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from faultbed.checkers.formats import FORMATS, ImportedHistory, load_history, special_file_kind, streamed_format
from faultbed.interrupts import SIGNAL_LOOK_S
from faultbed.native import start_go
from faultbed.checkers.linearizable import (LINEARIZABLE, MODELS, FileTicket, check_imported, impossible_read,
                                            search_times, submit_file)
from faultbed.checkers.result import EXIT_ERROR, Result, check_safe, exit_code, merge_valid, verdict_word
from faultbed.crash import EXIT_INTERNAL, describe
from faultbed.errors import FaultbedError
from faultbed.memory import default_memory_limit_mb

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

MAX_WORKERS = 4  # histories checked at once by Python threads (each search is parallel inside too)
MAX_QUEUED = 256  # files queued in Go at once (Go checks one per CPU at a time)
HISTORY_FILE = "history.jsonl"
HISTORY_SUFFIXES = (".jsonl", ".edn")
SNIFFED_SUFFIXES = (".log", ".txt")  # porcupine's logs, but also prose and node logs: looked at first
SNIFF_BYTES = 4096
MAX_TIMEOUT = 86400.0
MAX_MEMORY_MB = 1024.0 * 1024  # a terabyte


@dataclass(frozen=True)
class Checked:
    """One history's outcome: a result, or the error that kept it from being checked."""

    path: str
    elapsed_ms: float
    history: ImportedHistory | None = None
    result: Result | None = None
    error: str | None = None
    skipped: str | None = None  # why a history has nothing to check for linearizability
    internal: bool = False  # the error is a bug in faultbed (exit 255), not bad input
    results: tuple[Result, ...] = ()  # a faultbed run re-checked by every checker of its workload

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "elapsed_ms": round(self.elapsed_ms, 3)}
        if self.skipped is not None:
            return {**data, "valid": None, "skipped": self.skipped}
        if self.result is None:
            return {**data, "valid": None, "error": self.error}
        if self.results:
            return {**data, "format": "faultbed", "workload": self.result.checker, "valid": self.result.valid,
                    "results": [r.to_json() for r in self.results]}
        details = self.result.details
        return {**data, "format": self.history.format if self.history else None, "model": details["model"],
                "valid": self.result.valid, "ops": details["ops"], "porcupine_ms": details["porcupine_ms"],
                "illegal_keys": details.get("illegal_keys", []), "visualization": details["visualization"],
                **({"impossible_reads": details["impossible_reads"]} if details.get("impossible_reads") else {}),
                **({"times": times} if (times := search_times(details, self.elapsed_ms)) else {})}


def check_paths(args: argparse.Namespace) -> int:
    start_go()
    _validate(args)
    initial = _initial(args.initial)
    if args.memory_limit is None:  # once, not per history ($FAULTBED_CHECK_MEMORY_MB or the machine's)
        args.memory_limit = default_memory_limit_mb()
    started = time.perf_counter()
    outcomes: list[Checked] = []
    not_histories: list[Checked] = []
    for outcome, is_history in _check_in_parallel(find_histories(args.paths), args, initial):
        (outcomes if is_history else not_histories).append(outcome)
        _print(outcome, args.json)
    if not outcomes:
        raise FaultbedError(f"no histories found in {', '.join(args.paths)}")
    if not args.json and (len(outcomes) > 1 or any(os.path.isdir(p) for p in args.paths)):
        print(_summary(outcomes + not_histories, time.perf_counter() - started))
    return _exit_code(outcomes)


def _check_in_parallel(found: Iterable[tuple[str, str, str | None, str | None]], args: argparse.Namespace,
                       initial: Any) -> Iterator[tuple[Checked, bool]]:
    """(outcome, whether it is a history) in the order found. A file Go reads alone (a porcupine etcd
    log, a faultbed JSONL history outside a run directory) is queued in Go, which checks one per CPU
    while the next are queued (no Python thread per file); the others are checked a few at a time by
    Python threads (the search runs in Go without the GIL, so one is read while another is searched)."""
    workers = min(MAX_WORKERS, os.cpu_count() or 1)
    pending: deque[tuple[Future[Checked] | _Queued, bool]] = deque()
    threaded = 0  # Python's checks in the window: their outcomes hold whole histories
    with _Workers(workers) as pool:
        for path, label, skip, sniffed in found:
            if skip:
                pending.append((_done(Checked(path, 0.0, skipped=skip)), False))
            else:
                queued = _queue_in_go(path, label, args, initial, sniffed)
                if queued is None:
                    threaded += 1
                pending.append((queued or pool.submit(check_path, path, label, args, initial), True))
            while pending and (_ready(pending[0][0]) or threaded > 2 * workers or len(pending) > MAX_QUEUED):
                head, is_history = pending.popleft()  # a bounded window
                threaded -= isinstance(head, Future) and is_history
                yield _outcome(head, args, initial), is_history
        while pending:
            head, is_history = pending.popleft()
            yield _outcome(head, args, initial), is_history


class _Workers:
    """A few daemon threads that check histories, a Future each. Not concurrent.futures': its threads
    are joined as the interpreter exits, so after Ctrl-C the process waited for a search in Go (a
    run directory's check, in one of them) to end, minutes on a history that blows the search up.
    Leaving the block cancels what has not started and tells them to stop after what they are
    doing, without waiting for it."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        self._threads = 0

    def submit(self, call: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, call, args))
        if self._threads < self._count:
            self._threads += 1
            threading.Thread(target=self._work, name=f"check-{self._threads}", daemon=True).start()
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, call, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call(*args))
                except BaseException as exc:  # the caller's result() raises it
                    future.set_exception(exc)

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc: object) -> None:
        while True:  # jobs left by an exception (Ctrl-C): not started, and never will be
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:  # a worker may take the last one meanwhile
                break
            if job is not None:
                job[0].cancel()
        for _ in range(self._threads):
            self._jobs.put(None)


@dataclass(frozen=True)
class _Queued:
    """A history file queued in Go, and what its outcome needs besides Go's answer."""

    path: str
    label: str
    format: str
    ticket: FileTicket | None
    classify_ms: float
    error: Checked | None = None  # it could not be queued


def _queue_in_go(path: str, label: str, args: argparse.Namespace, initial: Any,
                 sniffed: str | None = None) -> _Queued | None:
    """Queue the file in Go when Go can check it alone: no picture asked for, a format Go reads, and
    not a faultbed run (its spec.json names more checkers); None otherwise."""
    if args.visualize:
        return None
    started = time.perf_counter()
    # sniffed: a regular file whose first line was read already; streamed_format refuses special files
    format = sniffed if args.format is None and sniffed else streamed_format(path, args.format)
    if format is None or (format == "faultbed" and os.path.exists(
            os.path.join(os.path.dirname(os.path.abspath(path)), "spec.json"))):
        return None
    model = args.model or ("cas-register" if format == "porcupine-etcd" else "kv")
    try:
        ticket = submit_file(path, model, initial, args.timeout, args.memory_limit, format)
    except FaultbedError as exc:
        return _Queued(path, label, format, None, 0.0, Checked(path, 0.0, error=str(exc)))
    except Exception as exc:  # a bug in faultbed: reported (exit 255), and the other histories still checked
        return _Queued(path, label, format, None, 0.0,
                       Checked(path, 0.0, error=describe(exc).removeprefix("faultbed: "), internal=True))
    return _Queued(path, label, format, ticket, (time.perf_counter() - started) * 1000)


def _ready(head: Future[Checked] | _Queued) -> bool:
    return head.done() if isinstance(head, Future) else head.ticket is None


def _outcome(head: Future[Checked] | _Queued, args: argparse.Namespace, initial: Any) -> Checked:
    if isinstance(head, Future):
        while not head.done():
            wait((head,), SIGNAL_LOOK_S)  # back in Python now and then: Ctrl-C may have gone to another thread
        return head.result()
    if head.error is not None or head.ticket is None:
        assert head.error is not None
        return head.error
    try:
        result = head.ticket.result()
    except FaultbedError as exc:
        return Checked(head.path, head.classify_ms, error=str(exc))
    except Exception as exc:  # a bug in faultbed: reported (exit 255), and the other histories still checked
        return Checked(head.path, head.classify_ms, error=describe(exc).removeprefix("faultbed: "), internal=True)
    if result is None:  # something unusual in the file: Python's reader names it
        return check_path(head.path, head.label, args, initial)
    elapsed = head.classify_ms + result.details["elapsed_ms"]
    history = ImportedHistory(head.path, head.format, [], [], [], model=result.details["model"], file=head.path)
    return Checked(head.path, elapsed, history, result)


def _done(outcome: Checked) -> Future[Checked]:
    future: Future[Checked] = Future()
    future.set_result(outcome)
    return future


def _validate(args: argparse.Namespace) -> None:
    if args.model is not None and args.model not in MODELS:
        raise FaultbedError(f"unknown model {args.model!r} (known: {', '.join(MODELS)})")
    if args.format is not None and args.format not in FORMATS:
        raise FaultbedError(f"unknown format {args.format!r} (known: {', '.join(FORMATS)})")
    if args.timeout is not None and not (0 < args.timeout <= MAX_TIMEOUT):
        raise FaultbedError(f"--timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}], not {args.timeout}")
    if args.memory_limit is not None and not (0 < args.memory_limit <= MAX_MEMORY_MB):
        raise FaultbedError(f"--memory-limit must be a number of megabytes > 0 and <= {MAX_MEMORY_MB:g}, "
                            f"not {args.memory_limit}")


def _initial(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise FaultbedError(f"--initial must be a JSON value (e.g. 0, '\"\"' or '{{\"x\": 0}}'): "
                            f"{str(exc)[:120]}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def find_histories(paths: list[str]) -> Iterator[tuple[str, str, str | None, str | None]]:
    """(history path, label for file names, why it is skipped or None, its format when its first line
    showed it): files as given, directories searched by the rule in faultbed/commands/check.py's EPILOG."""
    for root in paths:
        if not os.path.isdir(root):
            yield root, os.path.splitext(os.path.basename(root))[0], None, None
            continue
        for directory, subdirectories, files in os.walk(root):
            subdirectories.sort()
            if HISTORY_FILE in files:  # a results directory: its history, not its node logs
                subdirectories.clear()
                yield (*_labelled(os.path.join(directory, HISTORY_FILE), root),
                       *_skip_reason(os.path.join(directory, HISTORY_FILE), sniff=False))
                continue
            for name in sorted(files):
                if name.upper().startswith("README") or not name.endswith(HISTORY_SUFFIXES + SNIFFED_SUFFIXES):
                    continue
                path = os.path.join(directory, name)
                yield (*_labelled(path, root), *_skip_reason(path, sniff=name.endswith(SNIFFED_SUFFIXES)))


def _skip_reason(path: str, sniff: bool) -> tuple[str | None, str | None]:
    """Why a file found in a directory is not checked: it is special (never opened), or a .log/.txt
    file whose first line does not look like a history; and porcupine-etcd when that line is a
    plain Jepsen log line (the file goes to Go's reader, which gives anything unusual back to Python)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot stat: {exc.strerror}", None
    if not stat.S_ISREG(mode):
        return f"{special_file_kind(mode)}, not a history file: never opened", None
    if not sniff:
        return None, None
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return f"cannot read: {exc.strerror}", None
    first = next((line.strip() for line in head.splitlines() if line.strip() and not line.startswith(b";")), b"")
    if first.startswith(b"INFO") and b"jepsen.util" in first:
        return None, "porcupine-etcd"
    if first[:1] in (b"{", b"[", b"(") or b"jepsen.util" in first:
        return None, None
    return "not a history (its first line is neither a map, a vector nor a Jepsen log line)", None


def _labelled(path: str, root: str) -> tuple[str, str]:
    relative = os.path.relpath(path, root)
    if os.path.basename(relative) == HISTORY_FILE:
        relative = os.path.dirname(relative) or os.path.basename(os.path.abspath(root))
    label = os.path.splitext(relative)[0].replace(os.sep, "_")
    return path, label


def check_path(path: str, label: str, args: argparse.Namespace, initial: Any) -> Checked:
    """Import and check one history; a user error becomes the outcome, not an exception."""
    started = time.perf_counter()
    early: _Early | None = None
    try:
        history = load_history(path, args.format, streamed=True)
        early = _start_in_go(history, args, initial)
        # the whole spec, read after Go has started: a problem in it is this history's error
        spec = _run_spec(path) if history.workload is not None else None
        results = _workload_results(path, history, spec, args, initial, early)
        if results:
            merged = Result(results[0].checker if len(results) == 1 else str(history.workload),
                            merge_valid(r.valid for r in results), summary="; ".join(r.headline() for r in results))
            return Checked(path, (time.perf_counter() - started) * 1000, history, merged, results=tuple(results))
        if args.model is None and history.workload is not None and history.model is None:
            return Checked(path, (time.perf_counter() - started) * 1000, history,
                           skipped=f"workload {history.workload!r} has no linearizability model "
                                   f"(pass --model to check it anyway)")
        visualization = os.path.join(args.visualize, f"{label}.html") if args.visualize else None
        result = (early and early.take()) or check_imported(history, args.model, initial, args.timeout,
                                                            visualization, args.always_visualize, args.memory_limit)
    except FaultbedError as exc:
        return Checked(path, (time.perf_counter() - started) * 1000, error=str(exc))
    except Exception as exc:  # a bug in faultbed: reported (exit 255), and the other histories still checked
        return Checked(path, (time.perf_counter() - started) * 1000, error=describe(exc).removeprefix("faultbed: "),
                       internal=True)
    finally:
        if early is not None:
            early.forget()
    return Checked(path, (time.perf_counter() - started) * 1000, history, result)


class _Early:
    """A run's history queued in Go before the registry says which checkers the run has: reading the
    entry points takes longer than Go takes to read and search a small history, so both go at once."""

    def __init__(self, ticket: FileTicket) -> None:
        self.ticket: FileTicket | None = ticket

    def take(self) -> Result | None:
        """Its result (once); None when Go left the file to Python's reader."""
        ticket, self.ticket = self.ticket, None
        return ticket.result() if ticket is not None else None

    def forget(self) -> None:
        if self.ticket is not None:
            self.ticket.forget()
            self.ticket = None


def _start_in_go(history: ImportedHistory, args: argparse.Namespace, initial: Any) -> _Early | None:
    """Queue a faultbed history's linearizability check in Go now, when it will be wanted as Go alone
    gives it (a model known, no picture): check_imported's fast path, started early."""
    model = args.model or history.model
    if history.file is None or history.format != "faultbed" or args.visualize or model is None:
        return None
    return _Early(submit_file(history.file, model, initial if initial is not None else history.initial,
                              args.timeout, args.memory_limit, "faultbed"))


def _print(outcome: Checked, as_json: bool) -> None:
    if outcome.error is not None:
        print(f"faultbed: {outcome.error}", file=sys.stderr, flush=True)
    if as_json:
        print(json.dumps(outcome.to_json()), flush=True)
    elif outcome.error is not None:
        print(f"{'error':8} {outcome.path}", flush=True)  # the reason is on stderr, in one line
    elif outcome.skipped is not None:
        print(f"{'skipped':8} {outcome.path}: {outcome.skipped}", flush=True)
    elif outcome.result is not None:
        print(_line(outcome), flush=True)


def _run_spec(path: str) -> TestSpec:
    """The spec.json of the run whose history is at `path`, read whole (FaultbedError names a problem)."""
    from faultbed.run_files import read_spec  # here: checking other histories never needs the run files

    return read_spec(os.path.dirname(os.path.abspath(path)))


def _workload_results(path: str, history: ImportedHistory, spec: TestSpec | None, args: argparse.Namespace,
                      initial: Any, early: _Early | None = None) -> list[Result]:
    """A faultbed run's history re-checked by every checker of its workload (`spec`: its spec.json,
    None for a bare history) and those its system adds (raft-invariants on the nodes' traces in the run's data/),
    each through check_safe with the run directory, as the run itself was checked; [] when
    linearizability alone (the fast path) is wanted. Linearizability of a workload with a known
    model keeps its fast path (Go reads the file)."""
    if args.model is not None or args.format not in (None, "faultbed") or spec is None:
        return []
    # imported here: the registry (entry points) costs start-up time that checking other
    # histories never needs
    from faultbed import plugins
    from faultbed.checkers.compose import checker_names, load_checker, system_checkers
    from faultbed.history import HistoryFile

    run_dir = os.path.dirname(os.path.abspath(path))
    names = tuple(plugins.workload(spec.workload).checkers) + system_checkers(spec, run_dir)
    fast = LINEARIZABLE.name in names and history.model is not None
    others = [name for name in names if not (fast and name == LINEARIZABLE.name)]
    if not others:
        return []  # linearizability alone says unknown itself when nothing completed
    others = list(checker_names(others))  # and stats: an empty run is unknown, never a vacuous valid
    results = [(early and early.take()) or check_imported(history, None, initial, args.timeout, None, False,
                                                         args.memory_limit)] if fast else []
    with HistoryFile(path) as events:  # read as each checker goes: a long run's events are never all held
        return results + [check_safe(load_checker(name), events, spec, run_dir, args.memory_limit)
                          for name in others]


def _line(outcome: Checked) -> str:
    assert outcome.result is not None
    if outcome.results:
        return f"{verdict_word(outcome.result.valid):8} {outcome.path}  {outcome.result.summary}, " \
               f"{outcome.elapsed_ms:.1f} ms"
    details = outcome.result.details
    line = (f"{verdict_word(outcome.result.valid):8} {outcome.path}  {details['model']}, {details['ops']} ops, "
            f"{outcome.elapsed_ms:.1f} ms")
    if details.get("illegal_keys"):
        line += f", illegal keys: {', '.join(json.dumps(k) for k in details['illegal_keys'])}"
    if details.get("impossible_reads"):
        line += f" ({impossible_read(details['impossible_reads'][0])})"
    if details.get("reason"):
        line += f", {details['reason']}"
    elif outcome.result.valid == "unknown":
        line += ", timed out"
    if details.get("visualization"):
        line += f", see {details['visualization']}"
    return line


def _summary(outcomes: list[Checked], seconds: float) -> str:
    valid = [o.result.valid for o in outcomes if o.result is not None]
    counts = {"valid": sum(v is True for v in valid), "invalid": sum(v is False for v in valid),
              "unknown": sum(v == "unknown" for v in valid), "errors": sum(o.error is not None for o in outcomes),
              "skipped": sum(o.skipped is not None for o in outcomes)}
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    return (f"{len(outcomes)} histories: {counts['valid']} valid, {counts['invalid']} invalid, "
            f"{counts['unknown']} unknown, {counts['errors']} errors{skipped} ({seconds:.2f} s)")


def _exit_code(outcomes: list[Checked]) -> int:
    if any(o.internal for o in outcomes):
        return EXIT_INTERNAL
    if any(o.error is not None for o in outcomes):
        return EXIT_ERROR
    return exit_code(merge_valid(o.result.valid for o in outcomes if o.result is not None))
