"""Linearizability through porcupine (Go), loaded as a C library with ctypes.

One call per history: Python hands over the operations as JSON with a model name
and options; Go partitions (by key for register models), searches the partitions
concurrently, stops at the first illegal one, and writes porcupine's HTML page
when asked. Models: register, cas-register, kv, mutex, multi-register, fifo-queue.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from faultbed.checkers.anomaly_time import first_invocation_time
from faultbed.checkers.formats import (ROW_KEY, ImportedHistory, OpRow, import_faultbed, load_history,
                                      rows_from_events, rows_from_numbered, same_key)
from faultbed.native import GoCall, in_go, in_go_later, library_path, load_library
from faultbed.checkers.names import MODELS
from faultbed.checkers.result import UNKNOWN, Result, Valid, first_anomaly_words
from faultbed.errors import FaultbedError, HistoryError
from faultbed.history import HistoryFile
from faultbed.memory import FLOOR_HOLD_MB, default_memory_floor_mb, default_memory_limit_mb, floor_reason, limit_reason

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

CHECKER = "linearizable"
CHECK_TIMEOUT = 120.0  # seconds; spec.options["check_timeout"] overrides
NOTHING_COMPLETED = "no operation completed: a history where nothing happened proves nothing"
_VERDICTS: dict[str, Valid] = {"Ok": True, "Illegal": False, "Unknown": UNKNOWN}
class UnencodableError(FaultbedError):
    """Something in the request JSON cannot carry (NaN, infinity, map keys of mixed types)."""


def call_porcupine(request: dict[str, Any]) -> dict[str, Any]:
    """One FaultbedCheck call: request and response as JSON (see checkers/porcupine/request.go)."""
    library = load_library(library_path())
    payload = _payload(request)
    return in_go(lambda: _answer(library, library.FaultbedCheck(payload)))


def _payload(request: dict[str, Any]) -> bytes:
    try:
        return _encode(request).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise UnencodableError(f"cannot hand the history to porcupine: {str(exc)[:120]}") from exc


def _answer(library: ctypes.CDLL, pointer: int) -> dict[str, Any]:
    try:
        answer = ctypes.string_at(pointer)
    finally:
        library.FaultbedFree(pointer)
    return json.loads(answer)  # type: ignore[no-any-return]


def _encode(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces: Go compares values as text); ValueError or TypeError
    for what JSON cannot carry (NaN, infinity, map keys of mixed types)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable, allow_nan=False)


def _unencodable_row(ops: Sequence[OpRow]) -> tuple[int, str] | None:
    """The first operation JSON cannot carry, and why (None when every row encodes)."""
    for index, row in enumerate(ops):
        try:
            _encode(row)
        except (TypeError, ValueError, RecursionError) as exc:
            return index, str(exc)
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


def check_history(events: Sequence[dict[str, Any]], model: str = "kv", initial: Any = None,
                  timeout: float | None = None, visualize: str | None = None,
                  always_visualize: bool = False, memory_limit_mb: float | None = None,
                  known_illegal: Sequence[Any] = (), illegal_events: Sequence[int] | None = None) -> Result:
    """Check faultbed history events (nemesis events become annotations in the picture).

    When invalid, the first anomalous operation is found and `visualize` shows the
    smallest illegal prefix of the first illegal key (the whole history goes to
    `<name>-full.html`). The pictures and that search take at most `timeout` (CHECK_TIMEOUT
    when None) beyond the verdict, each search within the memory limit: what does not fit
    is left out and said (a verdict found in milliseconds must not wait minutes for them).
    `known_illegal`: the illegal keys a check of the same history found (the run's quick check):
    they are drawn without a second search. `illegal_events`: where their operations are in `events`
    (a HistoryFile; that check's illegal_events): only those events (and the nemesis's) are read.
    """
    full = _full_path(visualize) if visualize else None
    rows: list[OpRow] | None = None
    if known_illegal and full and illegal_events is not None and isinstance(events, HistoryFile):
        try:
            # other keys' events named by mistake go with the other keys' rows below; a mistake that
            # breaks the pairing is a HistoryError
            rows, lines, annotations = rows_from_numbered(events.numbered(sorted({*illegal_events,
                                                                                  *events.nemesis_numbers()})))
        except (HistoryError, IndexError) as exc:  # Go and Python disagree on the file: read it all
            log.warning("%s: the illegal keys' events as Go named them do not pair (%s): reading every event",
                        events.path, exc)
            rows = None
    if rows is None:
        rows, lines, annotations = rows_from_events(events)
    if known_illegal and full:  # only they are drawn: the other keys' rows need not go to Go
        kept = [i for i, row in enumerate(rows) if any(same_key(row[ROW_KEY], key) for key in known_illegal)]
        rows, lines = [rows[i] for i in kept], [lines[i] for i in kept]
    history = ImportedHistory("history", "faultbed", rows, lines, annotations)
    result = check_imported(history, model, initial, timeout, full, always_visualize, memory_limit_mb,
                            known_illegal if full else ())
    if result.valid is not False:
        if visualize and full and os.path.exists(full):
            try:
                os.replace(full, visualize)
                result.details["visualization"] = visualize
            except OSError as exc:
                result.details["visualization"] = None
                result.details["visualization_error"] = f"cannot write the visualization {visualize}: {exc}"
        return result
    origin = first_invocation_time(events)
    budget = (timeout or CHECK_TIMEOUT) - result.details.get("visualize_ms", 0.0) / 1000  # the whole picture's
    return _with_first_anomaly(result, rows, model, initial, annotations, visualize, origin,
                               time.monotonic() + max(budget, 0.0), memory_limit_mb)


def _full_path(visualize: str) -> str:
    base, ext = os.path.splitext(visualize)
    return f"{base}-full{ext or '.html'}"


def _with_first_anomaly(result: Result, rows: Sequence[OpRow], model: str, initial: Any,
                        annotations: Sequence[dict[str, Any]], visualize: str | None, origin: int,
                        deadline: float, memory_limit_mb: float | None) -> Result:
    """Add `first_anomaly` (and its time into the run) and draw its minimal prefix, by `deadline`:
    the search for it has half the time left, shared by its probes (a hopeless probe, on a hot
    key's prefix whose pending operations blow the search up, then costs a share, not all of it),
    the picture the rest."""
    from faultbed.checkers.shrink import first_anomaly  # here: only an anomaly needs it

    keys = result.details.get("illegal_keys") or [None]
    impossible = next((read["return"] for read in result.details.get("impossible_reads", ())
                       if same_key(read["key"], keys[0])), None)
    search_for = (deadline - time.monotonic()) / 2
    search_until = time.monotonic() + search_for
    each = search_for / max(1, math.ceil(math.log2(len(rows) + 1)))  # a binary search's probes at most

    def probe(prefix: list[OpRow]) -> Valid:
        left = min(each, search_until - time.monotonic())
        if left <= 0:
            return UNKNOWN
        return check_operations(prefix, model, initial, left, memory_limit_mb=memory_limit_mb).valid

    found = first_anomaly(rows, model, keys[0], probe, impossible)
    if found is None:
        return result
    details = dict(result.details, first_anomaly=found.to_json(origin))
    details["first_anomaly_ms"] = details["first_anomaly"]["time_ms"]
    summary = (f"{result.summary}, {first_anomaly_words(details['first_anomaly'])} at "
               f"{details['first_anomaly_ms'] / 1000:.2f} s")
    if visualize:
        left = deadline - time.monotonic()
        details["visualization_full"] = full = details.get("visualization")
        details["visualization"] = None
        if full and found.prefix == list(rows):  # nothing cut away: the whole history's picture is the one
            try:
                shutil.copyfile(full, visualize)
                details["visualization"] = visualize
            except OSError as exc:
                details["visualization_error"] = f"cannot write the visualization {visualize}: {exc}"
        elif left > 0:
            minimal = check_operations(found.prefix, model, initial, left, visualize=visualize,
                                       annotations=annotations, memory_limit_mb=memory_limit_mb,
                                       known_illegal=keys[:1] if keys[0] is not None else ())  # illegal: found so
            details["visualization"] = minimal.details.get("visualization")
            if minimal.details.get("visualization_error"):
                details["visualization_error"] = minimal.details["visualization_error"]
        else:
            details["visualization_error"] = "the smallest illegal prefix was not drawn: no time left"
    return Result(result.checker, result.valid, details, summary)


def check_imported(history: ImportedHistory, model: str | None = None, initial: Any = None,
                   timeout: float | None = None, visualize: str | None = None,
                   always_visualize: bool = False, memory_limit_mb: float | None = None,
                   known_illegal: Sequence[Any] = ()) -> Result:
    """Check an imported history; the model defaults to what its format implies, else kv."""
    if model is None and history.workload is not None and history.model is None:
        raise FaultbedError(f"{history.path}: workload {history.workload!r} has no linearizability model; "
                            f"pass --model")
    model = model or history.model or "kv"
    initial = initial if initial is not None else history.initial
    if history.file is not None and not visualize:
        result = check_file(history.file, model, initial, timeout, memory_limit_mb, history.format)
        if result is not None:
            return result
    if history.file is not None:
        history = (import_faultbed(history.file) if history.format == "faultbed"
                   else load_history(history.file, history.format))
    return check_operations(history.ops, model, initial, timeout, visualize, always_visualize,
                            history.annotations, history.where, memory_limit_mb, known_illegal)


def check_operations(ops: Sequence[OpRow], model: str, initial: Any = None, timeout: float | None = None,
                     visualize: str | None = None, always_visualize: bool = False,
                     annotations: Sequence[dict[str, Any]] = (),
                     where: Callable[[int], str] = lambda row: f"operation {row}" if row >= 0 else "history",
                     memory_limit_mb: float | None = None, known_illegal: Sequence[Any] = ()) -> Result:
    """Check operation rows (see checkers/formats.py) against a model.

    The search stops (verdict unknown) after `timeout` seconds or when the process
    passes `memory_limit_mb` (default: MEMORY_FRACTION of the machine's memory).
    """
    started = time.perf_counter()
    try:
        answer = _call(model, initial, timeout, visualize, always_visualize, annotations, memory_limit_mb, ops=ops,
                       known_illegal=known_illegal)
    except UnencodableError:
        bad = _unencodable_row(ops)  # row by row only now: it costs as much as the whole encoding again
        if bad is not None:
            raise HistoryError(f"{where(bad[0])}: a value JSON cannot carry: {bad[1][:120]}") from None
        raise
    if answer.get("error"):
        row = answer.get("error_op", -1)
        raise (HistoryError if row >= 0 else FaultbedError)(f"{where(row)}: {answer['error']}")
    return _result(answer, model, started, timeout)


def check_file(path: str, model: str, initial: Any = None, timeout: float | None = None,
               memory_limit_mb: float | None = None, format: str = "faultbed",
               events_of_illegal: bool = False) -> Result | None:
    """Check a history file that Go reads itself (faultbed JSONL, porcupine etcd log); None
    when Go leaves the file to Python's reader (anything unusual in it, which Python then names).
    `events_of_illegal`: details["illegal_events"] lists where the illegal keys' operations are
    in a faultbed file (check_history's illegal_events)."""
    started = time.perf_counter()
    answer = _call(model, initial, timeout, None, False, (), memory_limit_mb, history_file=path,
                   history_format=format, events_of_illegal=events_of_illegal)
    result = _file_result(path, answer, model, timeout)
    if result is not None:
        result.details["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return result


@dataclass
class FileTicket:
    """A history file queued in Go (FaultbedSubmit): Go checks a few at a time, one per CPU,
    while Python queues the next; result() waits for this one."""

    path: str
    model: str
    timeout: float | None
    limit: float
    ticket: GoCall[int]  # FaultbedSubmit's, queued (faultbed/native.py in_go_later)
    library: ctypes.CDLL

    def result(self) -> Result | None:
        """check_file's answer: the Result, None when Go leaves the file to Python's reader."""
        answer = in_go(lambda: _answer(self.library, self.library.FaultbedWait(self.ticket.answer())))
        answer["memory_limit_mb"] = self.limit
        return _file_result(self.path, answer, self.model, self.timeout)

    def forget(self) -> None:
        """Nobody will wait for this one (its check still runs to its end)."""
        in_go(lambda: self.library.FaultbedForget(self.ticket.answer()))


def submit_file(path: str, model: str, initial: Any = None, timeout: float | None = None,
                memory_limit_mb: float | None = None, format: str = "faultbed") -> FileTicket:
    """check_file without waiting: the file is checked in Go, in parallel with the others submitted."""
    limit = default_memory_limit_mb() if memory_limit_mb is None else memory_limit_mb
    library = load_library(library_path())
    request = _request(model, initial, timeout, None, False, (), limit, (), path, format)
    return FileTicket(path, model, timeout, limit, in_go_later(library.FaultbedSubmit, _payload(request)), library)


def _file_result(path: str, answer: dict[str, Any], model: str, timeout: float | None) -> Result | None:
    if answer.get("fallback") or answer.get("error_op", -1) >= 0:
        log.debug("%s: left to Python's reader: %s", path, answer["error"])
        return None
    if answer.get("error"):
        raise FaultbedError(f"{path}: {answer['error']}")
    return _result(answer, model, None, timeout)


def _call(model: str, initial: Any, timeout: float | None, visualize: str | None, always_visualize: bool,
          annotations: Sequence[dict[str, Any]], memory_limit_mb: float | None,
          ops: Sequence[OpRow] = (), history_file: str = "", history_format: str = "",
          known_illegal: Sequence[Any] = (), events_of_illegal: bool = False) -> dict[str, Any]:
    if model not in MODELS:  # before the directory of the picture is made
        raise FaultbedError(f"unknown model {model!r} (known: {', '.join(MODELS)})")
    if visualize:
        visualize = os.path.abspath(visualize)
        try:
            os.makedirs(os.path.dirname(visualize), exist_ok=True)
        except OSError:
            pass  # Go's attempt to write the page reports it; the verdict stands
    limit = default_memory_limit_mb() if memory_limit_mb is None else memory_limit_mb
    answer = call_porcupine(_request(model, initial, timeout, visualize, always_visualize, annotations, limit,
                                     ops, history_file, history_format, known_illegal, events_of_illegal))
    answer["memory_limit_mb"] = limit
    return answer


def _request(model: str, initial: Any, timeout: float | None, visualize: str | None, always_visualize: bool,
             annotations: Sequence[dict[str, Any]], limit: float, ops: Sequence[OpRow], history_file: str,
             history_format: str, known_illegal: Sequence[Any] = (), events_of_illegal: bool = False
             ) -> dict[str, Any]:
    if model not in MODELS:
        raise FaultbedError(f"unknown model {model!r} (known: {', '.join(MODELS)})")
    return {
        "model": model, "initial": initial, "timeout_ms": (timeout or 0) * 1000.0, "memory_limit_mb": limit,
        "memory_floor_mb": default_memory_floor_mb(), "memory_floor_hold_mb": FLOOR_HOLD_MB,
        "visualize": visualize or "", "always_visualize": always_visualize,
        "ops": ops, "annotations": list(annotations), "history_file": history_file,
        "history_format": history_format, "known_illegal": list(known_illegal),
        "events_of_illegal": events_of_illegal,
    }


def _result(answer: dict[str, Any], model: str, started: float | None, timeout: float | None) -> Result:
    """started None: the time inside Go (a submitted file's time waiting for its turn left out)."""
    elapsed_ms = answer["go_ms"] if started is None else (time.perf_counter() - started) * 1000
    details: dict[str, Any] = {
        "model": model,
        "ops": answer["ops"],
        "partitions": answer["partitions"],
        "segments": answer["segments"],
        "elapsed_ms": round(elapsed_ms, 3),
        "porcupine_ms": answer["porcupine_ms"],
        "go_ms": answer["go_ms"],
        "visualization": answer.get("visualization"),
    }
    if answer.get("illegal_keys"):
        details["illegal_keys"] = answer["illegal_keys"]
    if answer.get("impossible_reads"):
        details["impossible_reads"] = answer["impossible_reads"]
    if answer.get("illegal_events"):
        details["illegal_events"] = answer["illegal_events"]
    if answer.get("visualize_ms"):
        details["visualize_ms"] = answer["visualize_ms"]
    if answer.get("segments_while_reading"):
        details["segments_while_reading"] = answer["segments_while_reading"]
    if answer.get("search_to_ms"):  # when the searches ran, from the start of Go's part (see search_times)
        details["search_from_ms"], details["search_to_ms"] = answer["search_from_ms"], answer["search_to_ms"]
    if answer.get("cancelled_partitions"):
        details["cancelled_partitions"] = answer["cancelled_partitions"]
    if "events" in answer:
        details["events"] = answer["events"]
    if answer.get("peak_rss_mb"):
        details["peak_rss_mb"] = round(answer["peak_rss_mb"], 1)
    if answer["result"] == "Unknown":
        details["reason"] = (
            limit_reason(answer["memory_limit_mb"]) if answer.get("memory_exceeded")
            else floor_reason(answer["available_mb"], answer.get("peak_rss_mb", 0)) if answer.get("machine_memory_low")
            else f"timed out after {timeout:g} s")
    if answer.get("picture_skipped"):
        details["picture_skipped"] = answer["picture_skipped"]  # legal keys too long to draw
    if answer.get("visualization_error"):
        log.warning("%s", answer["visualization_error"])
        details["visualization_error"] = answer["visualization_error"]
    if answer["completed"] == 0:  # an empty or torn history, a run interrupted before any operation completed
        details["reason"] = NOTHING_COMPLETED
        return Result(CHECKER, UNKNOWN, details, NOTHING_COMPLETED)
    valid = _VERDICTS[answer["result"]]
    return Result(CHECKER, valid, details, summary(valid, details))


def search_times(details: dict[str, Any], elapsed_ms: float) -> dict[str, float] | None:
    """Where a check's time beside porcupine's search went, in milliseconds. Python's part: all that
    is outside Go's call (the format's sniff, the request, entering the call; the reading of the
    history too when Python read it). Go's part: the time before its first search began (opening the
    file, reading up to the first segment cut), between searches (none running: the reading had not
    cut the next segment yet, or a cut one waited to be scheduled) and after the last one. With the
    search's own time (porcupine_ms) they add up to elapsed_ms. None when Go searched nothing (every
    verdict known without a search)."""
    if not details.get("search_to_ms"):
        return None
    go, first, last = details["go_ms"], details["search_from_ms"], details["search_to_ms"]
    return {"python_ms": round(elapsed_ms - go, 3), "before_search_ms": first,
            "between_searches_ms": round(last - first - details["porcupine_ms"], 3),
            "after_search_ms": round(go - last, 3)}


def summary(valid: Valid, details: dict[str, Any]) -> str:
    """`illegal keys: ["k3"]`, `timed out`, or `1234 ops` (model kv)."""
    if valid is False:
        keys = details.get("illegal_keys") or []
        said = f"illegal keys: {json.dumps(keys[:5], default=str)[:200]}" if keys else "not linearizable"
        reads = details.get("impossible_reads") or []
        if reads:
            said += f" ({impossible_read(reads[0])})"
        return said
    if valid == UNKNOWN:
        return str(details.get("reason", "timed out"))
    return f"{details['ops']} ops, model {details['model']}"


def impossible_read(read: dict[str, Any]) -> str:
    """One line on a read no order explains (Go's impossible_reads)."""
    key = "" if read["key"] is None else f"({json.dumps(read['key'], default=str)[:60]})"
    return f"read{key} saw {json.dumps(read['value'], default=str)[:60]}, which nothing called before it " \
           f"returned wrote"


@dataclass(frozen=True)
class LinearizableChecker:
    """Linearizability against a porcupine model (kv: a register per key); draws the first anomaly."""

    model: str = "kv"
    initial: Any = None
    name: str = CHECKER
    description: str = "linearizable (porcupine), a register per key; draws the smallest illegal prefix"
    bounds_its_memory = True  # Go's search stops at the memory limit (check_safe's bound would lose what it found)

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        from faultbed.store import HISTORY as HISTORY_FILE, LINEARIZABILITY_HTML  # here: `check` needs no store

        visualization = os.path.join(out_dir, LINEARIZABILITY_HTML) if out_dir else None
        timeout = float(spec.options.get("check_timeout", CHECK_TIMEOUT))
        stored = os.path.join(out_dir, HISTORY_FILE) if out_dir else None
        if stored and os.path.exists(stored):
            # Go reads the stored history itself (fast, small); only an anomaly needs Python's
            # rows, for its first anomalous operation and the pictures
            quick = check_file(stored, self.model, self.initial, timeout, events_of_illegal=True)
            same = quick is not None and quick.details.pop("events", None) == len(history)  # what the run read
            if quick is not None and same and quick.valid is not False:
                return quick
            if quick is not None and same and quick.details.get("illegal_keys"):
                # its illegal keys drawn without searching again (a hot key's search can take seconds)
                drawn = check_history(history, self.model, self.initial, timeout, visualization,
                                      known_illegal=quick.details["illegal_keys"],
                                      illegal_events=quick.details.pop("illegal_events", None))
                for searched in ("ops", "partitions", "porcupine_ms", "go_ms", "search_from_ms", "search_to_ms",
                                 "segments", "segments_while_reading", "cancelled_partitions",
                                 "peak_rss_mb"):  # the search's, not the drawing call's
                    drawn.details.pop(searched, None)
                    if searched in quick.details:
                        drawn.details[searched] = quick.details[searched]
                drawn.details["elapsed_ms"] = round(quick.details["elapsed_ms"] + drawn.details["elapsed_ms"], 3)
                return drawn
        return check_history(history, self.model, self.initial, timeout, visualization)


LINEARIZABLE = LinearizableChecker()
