"""Histories: one JSON object per line, written as it happens (Jepsen's semantics).

An operation is an `invoke` event followed by exactly one completion of the same
process: `ok` (took effect), `fail` (certainly did not) or `info` (unknown). After
`info` the process id is retired. Nemesis events have `process: "nemesis"`.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, Iterator

from faultbed.errors import HistoryError

DEFAULT_FAULT_COLOR = "#c7e9ff"
EVENT_TYPES = ("invoke", "ok", "fail", "info")
COMPLETION_TYPES = ("ok", "fail", "info")
NEMESIS = "nemesis"


def fault_color(event: dict[str, Any], kind: str = "") -> str:
    """A fault's colour: the one its kind recorded in the start event; for histories without one
    (older runs, Jepsen's), the colour of the registered fault kind named `kind` (by default the
    one in `f`: start-partition -> partition), else a default."""
    color = event.get("color")
    if isinstance(color, str) and color:
        return color
    from faultbed import plugins
    from faultbed.errors import FaultbedError

    name = kind or str(event.get("f") or "").removeprefix("start-").removeprefix("stop-")
    if name in plugins.registered("faults"):
        try:
            return str(plugins.load("faults", name).color)
        except (FaultbedError, AttributeError):
            pass
    return DEFAULT_FAULT_COLOR


class HistoryWriter:
    """Appends events to history.jsonl, flushed per line; safe to share between threads."""

    def __init__(self, path: str, clock_origin_ns: int | None = None) -> None:
        self.path = path
        self._fh: IO[str] = open(path, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()
        self._index = 0
        self._origin = time.monotonic_ns() if clock_origin_ns is None else clock_origin_ns
        self._watchers: list[Callable[[dict[str, Any]], None]] = []
        self.closed = False

    def __enter__(self) -> "HistoryWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_clock(self) -> None:
        """Make `time` count from now (the main phase), so times mean "into the run" everywhere."""
        with self._lock:
            if self._index:
                raise HistoryError(f"{self.path}: the clock starts before the first event")
            self._origin = time.monotonic_ns()

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Stamp `index` and `time` onto the event and write it; returns the event."""
        with self._lock:
            if self.closed:
                raise HistoryError(f"{self.path}: history already closed")
            event["index"] = self._index
            event["time"] = time.monotonic_ns() - self._origin
            self._index += 1
            self._fh.write(json.dumps(event, separators=(", ", ": "), default=_jsonable) + "\n")
            watchers = tuple(self._watchers)
        for watch in watchers:  # aimed faults see the run live; a watcher must be quick and never raise
            watch(event)
        return event

    def now(self) -> int:
        """Nanoseconds on the history's clock (what `time` would be for an event appended now)."""
        return time.monotonic_ns() - self._origin

    def watch(self, watcher: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call `watcher` with every event appended from now on; returns what stops it."""
        with self._lock:
            self._watchers.append(watcher)

        def unwatch() -> None:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)
        return unwatch

    def invoke(self, process: int, f: str, key: Any = None, value: Any = None, **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "invoke", "process": process, "f": f}
        if key is not None:
            event["key"] = key
        event["value"] = value
        event.update(extra)
        return self.append(event)

    def complete(self, invocation: dict[str, Any], type_: str, value: Any = None, **extra: Any) -> dict[str, Any]:
        if type_ not in COMPLETION_TYPES:
            raise ValueError(f"completion type must be one of {COMPLETION_TYPES}, not {type_!r}")
        event: dict[str, Any] = {"type": type_, "process": invocation["process"], "f": invocation["f"]}
        if "key" in invocation:
            event["key"] = invocation["key"]
        event["value"] = value
        event.update({k: v for k, v in extra.items() if v is not None})
        return self.append(event)

    def nemesis(self, f: str, value: Any = None, **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "info", "process": NEMESIS, "f": f, "value": value}
        event.update(extra)
        return self.append(event)

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._fh.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def open_history(path: str) -> IO[str]:
    """A history file opened as UTF-8 text. FIFOs, sockets and devices are refused before they are
    opened (reading one may block forever); the null device reads as an empty history."""
    kind = os.stat(path).st_mode
    if not stat.S_ISREG(kind):
        if stat.S_ISCHR(kind) and os.stat(path).st_rdev == os.stat(os.devnull).st_rdev:
            return io.StringIO("")
        raise HistoryError(f"{path}: not a regular file ({special_file_kind(kind)}): not read")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, even if swapped for a FIFO
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise HistoryError(f"{path}: not a regular file: not read")
    return os.fdopen(descriptor, "r", encoding="utf-8")


def special_file_kind(mode: int) -> str:
    """directory, FIFO, socket, character device or block device."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


MAX_DEPTH = 64  # deeper values are not histories; Python's and Go's recursion limits stay far away


def iter_history(path: str) -> Iterator[dict[str, Any]]:
    """Yield the events of a history.jsonl, reading it as they are taken (a long run's lines are never
    all held); a torn last line (crash mid-write) is ignored."""
    try:
        fh = open_history(path)
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read history: {exc.strerror}") from exc
    return _read_lines(fh, path)


def _read_lines(fh: IO[str], path: str) -> Iterator[dict[str, Any]]:
    with fh:
        try:
            yield from events_of_lines(fh, path)
        except OSError as exc:
            raise HistoryError(f"{path}: cannot read history: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise HistoryError(f"{path}: not a history: not UTF-8 text (byte {exc.start})") from exc


def events_of_lines(lines: Iterable[str], path: str) -> Iterator[dict[str, Any]]:
    """The events of a history's lines (each with its newline; a torn last line has none, and only
    the last line can lack one)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = _parse(line, path, number)
        except HistoryError:
            if not line.endswith("\n"):
                return  # the writer died mid-line: the prefix is still a history
            raise
        _validate(event, path, number)
        yield event


def _parse(line: str, path: str, number: int) -> Any:
    """One line as JSON; nesting, huge integers and bad escapes are HistoryErrors."""
    if line.count("[") + line.count("{") > MAX_DEPTH and nesting_depth(line) > MAX_DEPTH:
        raise HistoryError(f"{path}:{number}: values nested deeper than {MAX_DEPTH} levels")
    try:
        event = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise HistoryError(f"{path}:{number}: not JSON: {str(exc)[:200]}") from exc
    if type(event) is dict:  # one copy of each field name and short text for all events: half the memory
        return {_intern(k): (_intern(v) if type(v) is str and len(v) <= INTERNED_CHARS else v)
                for k, v in event.items()}
    return event


INTERNED_CHARS = 64  # types, fs, keys, nodes, errors repeat across a history; longer texts rarely do
_intern = sys.intern


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of JSON text, outside strings (counted up to MAX_DEPTH + 1)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest  # deep enough to refuse: a 100 MB line of "[" is not read to its end
        elif char in "]}":
            depth -= 1
    return deepest


def read_history(path: str) -> list[dict[str, Any]]:
    return list(iter_history(path))


def _validate(event: Any, path: str, number: int) -> None:
    if not isinstance(event, dict):
        raise HistoryError(f"{path}:{number}: an event must be a JSON object")
    type_ = event.get("type")
    if type_ not in EVENT_TYPES:
        raise HistoryError(f"{path}:{number}: type must be one of {EVENT_TYPES}, not {str(type_)[:40]!r}")
    if "process" not in event:
        raise HistoryError(f"{path}:{number}: event has no process")
    process = event["process"]
    if isinstance(process, bool) or not isinstance(process, (int, str)):
        raise HistoryError(f"{path}:{number}: process must be an integer or \"nemesis\", not "
                           f"{json.dumps(process)[:40]}")
    if not isinstance(event.get("f"), str):
        raise HistoryError(f"{path}:{number}: event has no f (a string)")
    if "time" in event and (isinstance(event["time"], bool) or not isinstance(event["time"], int)):
        raise HistoryError(f"{path}:{number}: time must be an integer (nanoseconds)")


@dataclass(frozen=True)
class Operation:
    """An invocation paired with its completion (None while it never completed)."""

    process: Any
    f: str
    invoke: dict[str, Any]
    completion: dict[str, Any] | None

    @property
    def type(self) -> str:
        """ok, fail or info; an operation that never completed counts as info."""
        return self.completion["type"] if self.completion is not None else "info"

    @property
    def key(self) -> Any:
        return self.invoke.get("key")

    @property
    def value(self) -> Any:
        """The completion's value when it has one (reads), else the invocation's."""
        if self.completion is not None and self.completion.get("value") is not None:
            return self.completion["value"]
        return self.invoke.get("value")


def pair_operations(events: Iterable[dict[str, Any]], path: str = "history") -> list[Operation]:
    """Pair each client invoke with its completion, in invocation order.

    Nemesis events are skipped. A process that invokes twice without completing, or
    that invokes again after an `info`, is a malformed history.
    """
    return [Operation(process=invoke["process"], f=invoke["f"], invoke=invoke, completion=completion)
            for _, invoke, completion in sorted(pairs(events, path), key=lambda pair: pair[0])]


def pairs(events: Iterable[dict[str, Any]], path: str = "history",
          nemesis: list[dict[str, Any]] | None = None) -> Iterator[tuple[int, dict[str, Any], dict[str, Any] | None]]:
    """Each client operation as soon as it completes, as (its number in invocation order, invoke,
    completion), then those never completed (completion None): only open invocations are held, so a
    long history can be paired as it is read. Nemesis events go to `nemesis` when it is given.
    HistoryError for a malformed pairing, as pair_operations says it."""
    open_ops: dict[Any, tuple[int, dict[str, Any]]] = {}
    retired: set[Any] = set()
    invoked = 0
    for position, event in enumerate(events):
        process = event["process"]
        if process == NEMESIS:
            if nemesis is not None:
                nemesis.append(event)
            continue
        where = f"{path}: event {event.get('index', position)}"
        if event["type"] == "invoke":
            if process in open_ops:
                raise HistoryError(f"{where}: process {process} invoked while its previous operation is open")
            if process in retired:
                raise HistoryError(f"{where}: process {process} invoked after an info (retired)")
            open_ops[process] = (invoked, event)
            invoked += 1
            continue
        opened = open_ops.pop(process, None)
        if opened is None:
            raise HistoryError(f"{where}: {event['type']} for process {process} with no open invocation")
        if event["type"] == "info":
            retired.add(process)
        yield opened[0], opened[1], event
    for number, invoke in sorted(open_ops.values(), key=lambda opened: opened[0]):
        yield number, invoke, None


def nemesis_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("process") == NEMESIS]
