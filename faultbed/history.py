"""Histories: one JSON object per line, written as it happens (Jepsen's semantics).

An operation is an `invoke` event followed by exactly one completion of the same
process: `ok` (took effect), `fail` (certainly did not) or `info` (unknown). After
`info` the process id is retired. Nemesis events have `process: "nemesis"`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import sys
import threading
import time
from array import array
from dataclasses import dataclass
from json.scanner import make_scanner
from typing import IO, Any, Callable, Iterable, Iterator, Sequence, TypeVar, overload

from faultbed.errors import HistoryError, SetupError
from faultbed.memory import check_bound

DEFAULT_FAULT_COLOR = "#c7e9ff"
EVENT_TYPES = ("invoke", "ok", "fail", "info")
COMPLETION_TYPES = ("ok", "fail", "info")
NEMESIS = "nemesis"
SCAN_IN_GO_BYTES = 1 << 20  # a HistoryFile this long is scanned in Go; a shorter one as soon in Python
T = TypeVar("T")
log = logging.getLogger(__name__)


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
        # the Unix time (ns) of `time` 0, for what other clocks stamp (the nodes' traces); None: not known
        self.unix_origin_ns: int | None = time.time_ns() if clock_origin_ns is None else None
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
            self.unix_origin_ns = time.time_ns()

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
    descriptor = _open_regular(path)
    return io.StringIO("") if descriptor is None else os.fdopen(descriptor, "r", encoding="utf-8")


def _open_regular(path: str) -> int | None:
    """open_history's descriptor: a regular file's, None for the null device; HistoryError for
    other special files, OSError when it cannot be opened."""
    kind = os.stat(path).st_mode
    if not stat.S_ISREG(kind):
        if stat.S_ISCHR(kind) and os.stat(path).st_rdev == os.stat(os.devnull).st_rdev:
            return None
        raise HistoryError(f"{path}: not a regular file ({special_file_kind(kind)}): not read")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, even if swapped for a FIFO
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise HistoryError(f"{path}: not a regular file: not read")
    return descriptor


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
    the last line can lack one): a torn last line (no newline, not JSON: the writer died mid-line)
    ends them, the prefix still a history; HistoryError names what is wrong (HistoryFile's scan
    reads lines by the same rules)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = _parse(line, path, number)
        except HistoryError:
            if not line.endswith("\n"):
                return
            raise
        _validate(event, path, number)
        yield event


def _parse(line: str, path: str, number: int) -> Any:
    """One line as JSON; nesting, huge integers and bad escapes are HistoryErrors."""
    return _interned(_load(line, path, number))


def _load(line: str, path: str, number: int) -> Any:
    """One line as JSON, its strings not interned (HistoryFile's validating pass keeps no event)."""
    if line.count("[") + line.count("{") > MAX_DEPTH and nesting_depth(line) > MAX_DEPTH:
        raise HistoryError(f"{path}:{number}: values nested deeper than {MAX_DEPTH} levels")
    try:
        return json_line(line)
    except (ValueError, RecursionError) as exc:
        raise HistoryError(f"{path}:{number}: not JSON: {str(exc)[:200]}") from exc


def json_line(text: str) -> Any:
    """json.loads(text), the same value or the same error, faster for an object's line (a history's
    event, a Raft trace's record): json.loads's own scanner, without its two whitespace matches."""
    if text[:1] == "{":
        try:
            value, end = _scan_json(text, 0)
            if end == len(text) or not text[end:].strip(JSON_WHITESPACE):
                return value
        except (ValueError, StopIteration):
            pass  # json.loads says what is wrong, as it always did
    return json.loads(text)


_scan_json = make_scanner(json.JSONDecoder())  # what json.loads scans with: the same values
JSON_WHITESPACE = " \t\n\r"


def _interned(event: Any) -> Any:
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
    """Every event in a list: half a kilobyte each. A check reads a HistoryFile instead."""
    return list(iter_history(path))


class HistoryFile(Sequence[dict[str, Any]]):
    """The events of a history.jsonl as a read-only sequence that holds none of them.

    Construction reads the file once and validates every event as read_history does (the same
    HistoryError, naming the line; a torn last line ignored), keeping only each event's byte
    offset and kind (9 bytes an event, not half a kilobyte: the kind answers nemesis() and
    client_type_counts() without a pass). Iterating reads the file again and parses as
    it goes, so an event can be freed as soon as its consumer drops it; an index seeks and parses
    one line; a slice is a view of the same file. Each read gives fresh dicts: a consumer that
    needs an event's identity across two passes must number the events in one pass.

    The file stays open, so replacing it (rename) does not matter; changing it in place does, and
    is a HistoryError on the next read ("changed since it was read"), never another history read
    silently. `close()` (or `with`) closes it for every view.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._offsets = array("q")
        self._kinds = bytearray()
        self._source = _Source(path)
        columns = Columns(self._kinds)
        try:
            self._columns: Columns | None = columns if self._source.scan(self._offsets, self._kinds, columns) else None
        except BaseException:
            self._source.close()
            raise
        self._indices: range | array[int] = range(len(self._offsets))

    def _view(self, indices: range | array[int]) -> "HistoryFile":
        view = object.__new__(HistoryFile)
        view.path, view._offsets, view._kinds, view._source = self.path, self._offsets, self._kinds, self._source
        view._columns, view._indices = self._columns, indices
        return view

    def columns(self) -> "Columns | None":
        """Every event's type, process, f and time as numbers, kept by the scan: what a pass that needs
        no more than those (stats, the report's points) reads instead of the events. None for a view
        that is not the whole file, and when some client event has no time or one beyond 64 bits."""
        whole = isinstance(self._indices, range) and self._indices == range(len(self._offsets))
        return self._columns if whole else None

    def nemesis(self) -> "HistoryFile":
        """A view of the nemesis events alone, found without reading the file again."""
        kinds = self._kinds
        return self._view(array("q", (i for i in self._indices if kinds[i] & _NEMESIS_KIND)))

    def nemesis_numbers(self) -> list[int]:
        """The 1-based numbers of the nemesis events (as numbered() takes them), without a pass."""
        kinds = self._kinds
        return [number for number, i in enumerate(self._indices, start=1) if kinds[i] & _NEMESIS_KIND]

    def client_type_counts(self) -> dict[str, int]:
        """How many client events of each type (invoke, ok, fail, info), without reading the file again."""
        indices, kinds = self._indices, self._kinds
        if isinstance(indices, range) and indices.step == 1:
            chosen = kinds[indices.start:indices.stop]
            return {name: chosen.count(code) for code, name in enumerate(EVENT_TYPES)}
        counts = dict.fromkeys(EVENT_TYPES, 0)
        for i in indices:
            if kinds[i] < _NEMESIS_KIND:
                counts[EVENT_TYPES[kinds[i]]] += 1
        return counts

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> "HistoryFile": ...

    def __getitem__(self, index: int | slice) -> "dict[str, Any] | HistoryFile":
        if isinstance(index, slice):
            return self._view(self._indices[index])
        try:
            position = self._indices[index]
        except IndexError:
            raise IndexError("history index out of range") from None
        return next(self._source.events(self._offsets[position], 1))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        indices = self._indices
        if isinstance(indices, range) and (indices.step == 1 or len(indices) <= 1):
            if indices:
                yield from self._source.events(self._offsets[indices[0]], len(indices))
            return
        for position in indices:
            yield from self._source.events(self._offsets[position], 1)

    def numbered(self, numbers: Sequence[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        """(number, event) for each 1-based number in `numbers` (ascending), parsing those events
        alone: the few events of a long history that a pass needs (an illegal key's, which Go
        names) without reading every other one into a dict."""
        indices, offsets, last = self._indices, self._offsets, len(self._offsets) - 1
        spans = []
        for number in numbers:
            if not 1 <= number <= len(indices):
                raise IndexError(f"history has no event {number} (it has {len(indices)})")
            position = indices[number - 1]
            spans.append((offsets[position], offsets[position + 1] if position < last else self._source.end))
        return zip(numbers, self._source.events_at(spans))

    def __repr__(self) -> str:
        return f"HistoryFile({self.path!r}, {len(self)} events)"

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> "HistoryFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# invocations' places and their completions' (-1: never completed): an operation's number in invocation
# order (history.pairs') is its invocation's rank among the places, so they order alike
Paired = tuple[array, array]


def paired_columns(events: Iterable[dict[str, Any]]) -> tuple[HistoryFile, Columns, Paired] | None:
    """events as a HistoryFile with its columns and their pairs (Columns.pairs), when it is one and
    they stand for its events; None when a pass must read the events."""
    if not isinstance(events, HistoryFile):
        return None
    columns = events.columns()
    paired = columns.pairs() if columns is not None else None
    return None if columns is None or paired is None else (events, columns, paired)


class Columns:
    """A HistoryFile's events as numbers, kept by its scan (17 bytes an event): each one's kind (as
    HistoryFile keeps it), process (a client's place among the processes in order of appearance, -1
    for the nemesis), f (a place in f_names) and time (0 for the nemesis's)."""

    __slots__ = ("kinds", "processes", "fs", "times", "f_ids", "_paired", "_pairs_known")
    OK = EVENT_TYPES.index("ok")  # a client ok's kind

    def __init__(self, kinds: bytearray) -> None:
        self.kinds = kinds
        self.processes = array("i")
        self.fs = array("i")
        self.times = array("q")
        self.f_ids: dict[str, int] = {}
        self._paired: Paired | None = None
        self._pairs_known = False

    @property
    def f_names(self) -> list[str]:
        return list(self.f_ids)

    def last_nemesis(self, f: str) -> int | None:
        """The place of the nemesis's last event with this f, None when it has none."""
        code, kinds, fs = self.f_ids.get(f), self.kinds, self.fs
        if code is None:
            return None
        return next((place for place in range(len(kinds) - 1, -1, -1)
                     if kinds[place] >= _NEMESIS_KIND and fs[place] == code), None)

    def first_invocation(self) -> int | None:
        """The place of the first client invocation, None when there is none."""
        place = self.kinds.find(_INVOKE)
        return None if place < 0 else place

    def client_ok_after(self, place: int) -> bool:
        """Whether a client operation completed ok after the event at `place`."""
        return self.kinds.find(self.OK, place + 1) >= 0

    def pairs(self) -> Paired | None:
        """pairs() over the columns: (invocations' places, completions' places or -1 when never
        completed), each operation when it completes, then those never completed, as pairs() gives
        them (its numbers order as the invocations' places do); None where pairs() raises
        HistoryError (a pass then reads the events: the message names the event's index, which the
        columns do not keep). Paired once (16 bytes an operation): stats and the report ask alike."""
        if not self._pairs_known:
            self._paired, self._pairs_known = self._pair(), True
        return self._paired

    def paired_as(self, paired: Paired | None) -> None:
        """The pairs as the scan found them (in Go): _pair's answer, without its pass."""
        self._paired, self._pairs_known = paired, True

    def _pair(self) -> Paired | None:
        invokes, completions = array("q"), array("q")
        open_ops: dict[int, int] = {}  # process -> its open invocation's place
        retired: set[int] = set()
        for place, (kind, process) in enumerate(zip(self.kinds, self.processes)):
            if kind >= _NEMESIS_KIND:
                continue
            if kind == _INVOKE:
                if process in open_ops or process in retired:
                    return None
                open_ops[process] = place
                continue
            opened = open_ops.pop(process, None)
            if opened is None:
                return None
            if kind == _INFO:
                retired.add(process)
            invokes.append(opened)
            completions.append(place)
        for place in sorted(open_ops.values()):
            invokes.append(place)
            completions.append(-1)
        return invokes, completions


class _Source:
    """A HistoryFile's open file: the validating scan, the stamp it left, and the reads after it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.descriptor: int | None = None
        try:
            self.descriptor = _open_regular(path)
        except OSError as exc:
            raise HistoryError(f"{path}: cannot read history: {exc.strerror}") from exc
        self.size = 0
        self.end = 0  # where the last event's line (and the blank lines after it) ends: a torn line starts there
        self.stamp: tuple[int, int] = (0, 0)

    def scan(self, offsets: array[int], kinds: bytearray, columns: Columns) -> bool:
        """Validate every event (read_history's rules and messages), appending each one's offset and
        kind (its type's place in EVENT_TYPES, plus _NEMESIS_KIND for the nemesis's), and its process,
        f and time to `columns`; whether the columns hold every event (each client event has a time
        within 64 bits)."""
        if self.descriptor is None:
            return True  # the null device: an empty history
        plain = True if self._scanned_in_go(offsets, kinds, columns) else self._scan_lines(offsets, kinds, columns)
        status = os.fstat(self.descriptor)
        if status.st_size != self.size:
            raise HistoryError(f"{self.path}: changed while it was read ({self.size} bytes read, {status.st_size} "
                               f"now): is a run still writing it? Check it when the run has ended")
        self.stamp = (status.st_size, status.st_mtime_ns)
        return plain

    def _scanned_in_go(self, offsets: array[int], kinds: bytearray, columns: Columns) -> bool:
        """The scan in Go (checkers/porcupine/scan.go), for a file of SCAN_IN_GO_BYTES or more: the
        same columns in a sixth to a tenth of the time; False when Go leaves the file to Python's
        scan (anything Go does not read exactly as Python would: Python then reads it, or says what
        is wrong)."""
        assert self.descriptor is not None
        if os.fstat(self.descriptor).st_size < SCAN_IN_GO_BYTES:
            return False
        from faultbed.native import scan_history
        try:  # the same file as the descriptor's, whatever its name is now
            scanned = scan_history(f"/proc/self/fd/{self.descriptor}", offsets, kinds, columns.processes,
                                   columns.fs, columns.times)
        except SetupError:
            return False  # no library (a faultbed without Go's part): Python's scan
        if isinstance(scanned, str):
            log.debug("%s: scanned in Python: %s", self.path, scanned)
            return False
        end, size = scanned.end, scanned.size
        if end < size:  # a last line without its newline, not read: torn (not JSON) or read again in Python
            tail = os.pread(self.descriptor, size - end, end).decode("utf-8", errors="replace")
            try:
                _load(tail, self.path, 0)
            except HistoryError:
                pass  # torn: the history is what comes before it, as _scan_lines has it
            else:
                del offsets[:], kinds[:], columns.processes[:], columns.fs[:], columns.times[:]
                return False
        columns.f_ids.update((name, place) for place, name in enumerate(scanned.f_names))
        columns.paired_as(scanned.paired)
        self.end, self.size = end, size
        return True

    def _scan_lines(self, offsets: array[int], kinds: bytearray, columns: Columns) -> bool:
        """The scan in Python: scan()'s, line by line."""
        assert self.descriptor is not None
        # newline="": lines split where universal newlines split them, but their ends kept, so
        # their lengths in bytes add up to the offsets; the same decoder (same errors) as open_history
        text = os.fdopen(os.dup(self.descriptor), "r", encoding="utf-8", newline="")
        path, offset, line = self.path, 0, ""
        processes, fs, times, f_ids = columns.processes, columns.fs, columns.times, columns.f_ids
        process_ids: dict[Any, int] = {}
        plain = True
        try:
            with text:
                for number, line in enumerate(text, start=1):
                    if line.strip():
                        ended = line.rstrip("\r\n") + "\n" if "\r" in line else line  # as read_history sees it
                        try:  # events_of_lines' rules, its checks taken once with the columns' reads
                            event = _load(ended, path, number)
                        except HistoryError:
                            if not ended.endswith("\n"):
                                break  # a torn last line: the prefix is still a history
                            raise
                        kind: Any = event.get("type") if type(event) is dict else None
                        process, f, moment = ((event.get("process"), event.get("f"), event.get("time")) if kind
                                              else (0, 0, 0))
                        if not (type(kind) is str and kind in _KINDS and type(process) in _PROCESS_TYPES
                                and type(f) is str and (type(moment) is int or "time" not in event)):
                            _validate(event, path, number)  # says what is wrong (nothing else gets here)
                        offsets.append(offset)
                        if process == NEMESIS:
                            kinds.append(_KINDS[kind] | _NEMESIS_KIND)
                            client, moment = -1, 0
                        else:
                            kinds.append(_KINDS[kind])
                            known = process_ids.get(process)
                            client = process_ids.setdefault(process, len(process_ids)) if known is None else known
                        if plain:
                            try:
                                times.append(moment)  # TypeError: no time; OverflowError: beyond 64 bits
                            except (TypeError, OverflowError):
                                plain = False
                            processes.append(client)
                            code = f_ids.get(f)
                            if code is None:
                                code = f_ids[f] = len(f_ids)
                            fs.append(code)
                    offset += len(line) if line.isascii() else len(line.encode("utf-8"))
                    line = ""
        except OSError as exc:
            raise HistoryError(f"{path}: cannot read history: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise HistoryError(f"{path}: not a history: not UTF-8 text (byte {exc.start})") from exc
        self.end = offset
        self.size = offset + len(line.encode("utf-8"))  # and a torn last line
        return plain

    def check(self) -> int:
        """The descriptor, once the file is seen as it was read."""
        if self.descriptor is None:
            raise HistoryError(f"{self.path}: history closed")
        status = os.fstat(self.descriptor)
        if (status.st_size, status.st_mtime_ns) != self.stamp:
            raise self.changed()
        return self.descriptor

    def changed(self) -> HistoryError:
        return HistoryError(f"{self.path}: changed since it was read ({self.stamp[0]} bytes then): "
                            f"its events are not read again")

    def events(self, offset: int, count: int) -> Iterator[dict[str, Any]]:
        """`count` events from the one at byte `offset`, parsed as read (blank lines skipped)."""
        descriptor = self.check()
        lines = io.TextIOWrapper(io.BufferedReader(_Span(self, descriptor, offset), READ_BYTES if count > 1 else 8192),
                                 encoding="utf-8", newline="")
        path, taken = self.path, 0
        with lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    event = _parse(line, path, 0)
                except HistoryError:
                    raise self.changed() from None
                taken += 1
                yield event
                if taken == count:
                    return
        raise self.changed()  # fewer events than the scan found

    def events_at(self, spans: Sequence[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        """The event in each (start, end) byte span (an event's line, and blank lines after it), read a
        block at a time: ascending spans close together share their reads."""
        path, block_start, block = self.path, 0, b""
        for start, end in spans:
            if start < block_start or end > block_start + len(block):
                check_bound()
                block_start, block = start, os.pread(self.check(), max(SPAN_BYTES, end - start), start)
                self.check()
                if len(block) < end - start:
                    raise self.changed()
            try:
                yield _parse(block[start - block_start:end - block_start].decode("utf-8"), path, 0)
            except (HistoryError, UnicodeDecodeError):
                raise self.changed() from None

    def close(self) -> None:
        descriptor, self.descriptor = self.descriptor, None
        if descriptor is not None:
            os.close(descriptor)

    def __del__(self) -> None:
        self.close()


READ_BYTES = 1 << 16  # read at a time by a pass over many events (one event: a page or two)
SPAN_BYTES = 1 << 20  # read at a time by a pass over chosen events (most of a block is skipped)
_KINDS = {name: code for code, name in enumerate(EVENT_TYPES)}
_PROCESS_TYPES = (int, str)  # exactly (a bool is not a process), as _validate has it
_INVOKE, _INFO = _KINDS["invoke"], _KINDS["info"]
_NEMESIS_KIND = 4


class _Span(io.RawIOBase):
    """A source's bytes from `start` to what the scan validated, read with pread (each reader has
    its own position); each block is looked at after it is read: the file must be as scanned."""

    def __init__(self, source: _Source, descriptor: int, start: int) -> None:
        super().__init__()
        self._source, self._descriptor, self._position = source, descriptor, start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._source.size - self._position)
        if wanted <= 0:
            return 0
        check_bound()  # a checker reading the history is within the check's memory bound (faultbed/memory.py)
        data = os.pread(self._descriptor, wanted, self._position)
        self._source.check()
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)


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
        return operation_value(self.invoke, self.completion)


def operation_value(invoke: dict[str, Any], completion: dict[str, Any] | None) -> Any:
    """An operation's value (Operation.value), from its two events."""
    if completion is not None and completion.get("value") is not None:
        return completion["value"]
    return invoke.get("value")


def pair_operations(events: Iterable[dict[str, Any]], path: str = "history") -> list[Operation]:
    """Pair each client invoke with its completion, in invocation order.

    Nemesis events are skipped. A process that invokes twice without completing, or
    that invokes again after an `info`, is a malformed history.
    """
    return pair_into(events, lambda invoke, completion: Operation(invoke["process"], invoke["f"], invoke, completion),
                     path)


def pair_into(events: Iterable[dict[str, Any]], make: Callable[[dict[str, Any], dict[str, Any] | None], T],
              path: str = "history") -> list[T]:
    """`make(invoke, completion)` of each client operation, in invocation order, as pair_operations
    pairs them: a checker that keeps less than the two events of each (checkers/queue.py) holds
    only what it makes, as the history is read."""
    made: list[Any] = []
    for number, invoke, completion in pairs(events, path):  # numbered 0, 1, ... in invocation order, each once
        if number >= len(made):
            made.extend([None] * (number + 1 - len(made)))
        made[number] = make(invoke, completion)
    return made


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


def completion_counts(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many client events completed ok, fail and info (a HistoryFile knows without a pass)."""
    if isinstance(events, HistoryFile):
        return {t: n for t, n in events.client_type_counts().items() if t in COMPLETION_TYPES}
    counts = dict.fromkeys(COMPLETION_TYPES, 0)
    for event in events:
        if event["type"] in counts and event["process"] != NEMESIS:
            counts[event["type"]] += 1
    return counts


def nemesis_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nemesis's events in order (a HistoryFile's read without its clients' lines)."""
    if isinstance(events, HistoryFile):
        return list(events.nemesis())
    return [e for e in events if e.get("process") == NEMESIS]
