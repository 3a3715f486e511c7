"""Histories in, operations out: faultbed JSONL, Jepsen EDN, porcupine's test logs.

Every importer yields operation rows for checkers/linearizable.py, one tuple per
operation (tuples, not dataclasses, because histories have tens of thousands):

    (process, call, return, f, key, input, output[, metadata])

`return` is None when the outcome is unknown (Jepsen's info): the operation
stays open to the end of the history. Operations that certainly did not happen
(`fail`) are left out, except where a format gives `fail` another meaning.
Times are faultbed's monotonic nanoseconds, or the entry order for other formats.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator

from faultbed.errors import FaultbedError, HistoryError
from faultbed.history import (NEMESIS, events_of_lines, fault_color, open_history, pair_operations, read_history,
                              special_file_kind)

from faultbed.checkers.names import FORMATS, STREAMED_FORMATS  # noqa: F401 (FORMATS: callers find it here too)

OpRow = tuple[Any, ...]
ROW_KEY = 4  # an operation row's key: (process, call, return, f, key, input, output, origin)


def same_key(a: Any, b: Any) -> bool:
    """Whether two keys are one partition to Go, which compares their JSON (1 and true are two)."""
    return bool(a == b) and type(a) is type(b)

# Which model checks a faultbed run, by the spec's workload.
WORKLOAD_MODELS = {"register": "kv", "cas-register": "cas-register", "mutex": "mutex",
                   "multi-register": "multi-register", "fifo-queue": "fifo-queue"}


@dataclass(frozen=True)
class ImportedHistory:
    """Operations ready for the checker, and what the format says about checking them."""

    path: str
    format: str
    ops: list[OpRow]
    lines: list[int]  # the source line (or event position) of each row, for error messages
    annotations: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None  # the model this history implies; None: the caller decides
    initial: Any = None
    workload: str | None = None  # a faultbed run's workload, from spec.json
    file: str | None = None  # ops left unread: the checker streams them from this faultbed JSONL file

    def where(self, row: int) -> str:
        """`path:line` of an operation row, for error messages."""
        if 0 <= row < len(self.lines):
            return f"{self.path}:{self.lines[row]}"
        return self.path


DETECT_CHARS = 1 << 16  # the format shows in the first line: large files are not read whole to tell it
DETECT_HEAD = 4096  # and the first line is most often in the first few KB: not every line of 64 KB is split


def load_history(path: str, format: str | None = None, streamed: bool = False) -> ImportedHistory:
    """Read a history file in any known format (detected from its content unless given).

    streamed: a faultbed JSONL history or a porcupine etcd log is left for the checker
    to read (`file`), which is much faster and smaller than Python's dicts.
    """
    try:
        with open_history(path) as fh:
            text, format = _read_format(fh, path, format)
            if format not in STREAMED_FORMATS or not streamed:
                text += fh.read()
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read history: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise HistoryError(f"{path}: not a history: not UTF-8 text") from exc
    if format == "faultbed" and streamed:
        workload = named_workload(path)
        return ImportedHistory(path, "faultbed", [], [], [], model=WORKLOAD_MODELS.get(workload or ""),
                               workload=workload, file=path)
    if format == "porcupine-etcd" and streamed:
        return ImportedHistory(path, format, [], [], [], model="cas-register", file=path)
    if format == "faultbed":
        return import_faultbed(path, text)
    if format == "edn":
        return import_edn(text, path)
    if format == "porcupine-etcd":
        return import_porcupine_etcd(text, path)
    if format == "porcupine-kv":
        return import_porcupine_kv(text, path)
    raise FaultbedError(f"unknown history format {format!r} (known: {', '.join(FORMATS)})")


def streamed_format(path: str, format: str | None = None) -> str | None:
    """The format of a history the checker reads itself (faultbed JSONL, porcupine etcd log), given
    or detected as load_history does; None for any other file, unreadable ones included (load_history
    names their problem)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        if format is None:
            with open_history(path) as fh:
                format = _read_format(fh, path, None)[1]
    except (OSError, UnicodeDecodeError, FaultbedError):
        return None
    return format if format in STREAMED_FORMATS else None


def _read_format(fh: IO[str], path: str, format: str | None) -> tuple[str, str]:
    """(the text read so far, the format given or detected) as detect_format tells it from the first
    64 KB: when the first whole lines of the head show the format, only the head is read (4 KB, not
    64: a small history's check waits for this), else up to 64 KB, and all of it when that much is blank."""
    text = fh.read(DETECT_HEAD + 1)
    if format is None and len(text) > DETECT_HEAD:
        found = _first_form(text[:DETECT_HEAD].splitlines()[:-1], path)  # what detect_format finds first
        if found is not None:
            return text, found
    text += fh.read(DETECT_CHARS - len(text))
    if not format and not text[:DETECT_CHARS - 1].strip():
        text += fh.read()
    return text, format or detect_format(text, path)


def detect_format(text: str, path: str) -> str:
    """Tell the format from the first form; an empty file goes by its name (no operations either way)."""
    head = text[:DETECT_HEAD]
    if len(head) < len(text):  # the first whole lines of the head decide, most often: not every line of 64 KB
        found = _first_form(head.splitlines()[:-1], path)  # the last line of the head may be cut
        if found is not None:
            return found
    return _first_form(text.splitlines(), path) or ("porcupine-etcd" if path.endswith(".log") else "faultbed")


def _first_form(lines: list[str], path: str) -> str | None:
    """The format the first line that is neither blank nor a comment shows; None when there is none."""
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith(";"):
            continue
        if stripped.startswith("INFO") or "jepsen.util" in stripped:
            return "porcupine-etcd"
        if stripped[0] in "[(" or (stripped.startswith("{:") and not _KV_FIRST_LINE.search(stripped)):
            return "edn"  # a vector or list of maps, or Jepsen's history.edn: one map per line
        if stripped.startswith("{:"):
            return "porcupine-kv"
        if stripped.startswith("{"):
            return "faultbed"
        raise HistoryError(f"{path}:1: not a history faultbed knows (faultbed JSONL, Jepsen EDN, "
                           f"porcupine etcd or kv log)")
    return None


# -- faultbed ------------------------------------------------------------------------

def import_faultbed(path: str, text: str | None = None) -> ImportedHistory:
    """A faultbed history.jsonl (its text, when read already); the model comes from spec.json beside it."""
    events = read_history(path) if text is None else list(events_of_lines(_lines(text), path))
    ops, lines, annotations = rows_from_events(events, path)
    workload = workload_of(path)
    return ImportedHistory(path, "faultbed", ops, lines, annotations, model=WORKLOAD_MODELS.get(workload or ""),
                           workload=workload)


def rows_from_events(events: Iterable[dict[str, Any]], path: str = "history"
                     ) -> tuple[list[OpRow], list[int], list[dict[str, Any]]]:
    """Operation rows, their event positions (1-based) and nemesis annotations: one pass over the
    events (a HistoryFile gives fresh dicts on each pass, so positions are taken as they go by)."""
    return rows_from_numbered(enumerate(events, start=1), path)


def rows_from_numbered(events: Iterable[tuple[int, dict[str, Any]]], path: str = "history"
                       ) -> tuple[list[OpRow], list[int], list[dict[str, Any]]]:
    """rows_from_events of (position, event) pairs: some of a history's events with their places
    in it. The operations of a subset that holds each of its invocations with its completion
    pair as they do in the whole history."""
    position: dict[int, int] = {}  # id of an event held by an operation -> its position
    nemesis: list[dict[str, Any]] = []

    def numbered() -> Iterator[dict[str, Any]]:
        for number, event in events:
            position[id(event)] = number
            if event.get("process") == NEMESIS and isinstance(event.get("time"), int):
                nemesis.append(event)
            yield event

    rows: list[OpRow] = []
    lines: list[int] = []
    for op in pair_operations(numbered(), path):
        completion = op.completion
        for event in (op.invoke, completion):
            if event is not None and not isinstance(event.get("time"), int):
                raise HistoryError(f"{path}:{position[id(event)]}: event has no integer time (nanoseconds)")
        if completion is None or completion["type"] == "info":
            rows.append((op.process, op.invoke["time"], None, op.f, op.key, op.invoke.get("value"), None,
                         _origin(op.invoke, completion)))
        elif completion["type"] == "ok":
            output = True if op.f == "cas" else completion.get("value")
            rows.append((op.process, op.invoke["time"], completion["time"], op.f, op.key,
                         op.invoke.get("value"), output, _origin(op.invoke, completion)))
        else:
            continue  # fail: certainly did not take effect
        lines.append(position[id(op.invoke)])
    return rows, lines, nemesis_annotations(nemesis)


def _origin(invoke: dict[str, Any], completion: dict[str, Any] | None) -> str:
    parts = [f"event {invoke.get('index')}"]
    node = (completion or {}).get("node") or invoke.get("node")
    if node:
        parts.append(f"node {node}")
    if completion and completion.get("error"):
        parts.append(f"error {completion['error']}")
    return ", ".join(parts)


def _lines(text: str) -> list[str]:
    """Lines split at newlines only (str.splitlines also splits at U+2028 and others inside strings)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def named_workload(history_path: str) -> str | None:
    """The workload spec.json next to a history names, read as plain JSON: enough to start the
    check in Go. The caller still reads the spec whole (workload_of), which names any problem in
    it; a spec that is not plain is read whole here."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(history_path)), "spec.json"),
                  encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return workload_of(history_path)
    workload = data.get("workload") if isinstance(data, dict) else None
    return workload if isinstance(workload, str) else workload_of(history_path)


def workload_of(history_path: str) -> str | None:
    """The workload of a run, read from spec.json next to its history (None without one)."""
    from faultbed.run_files import read_spec

    run_dir = os.path.dirname(os.path.abspath(history_path))
    if not os.path.exists(os.path.join(run_dir, "spec.json")):
        return None
    return read_spec(run_dir).workload


# -- Jepsen-style entries (EDN, porcupine's logs) ---------------------------------------

@dataclass(frozen=True)
class Semantics:
    """How a format's outcomes read. Jepsen: fail did not happen. porcupine's etcd
    logs: a failed cas ran and found another value. knossos: a nil read is unknown."""

    failed_cas_ran: bool = False
    nil_read_unknown: bool = False


Entry = tuple[int, Any, str, str, Any, Any]  # line, process, type, f, key, value


def rows_from_entries(entries: Iterable[Entry], path: str, semantics: Semantics
                      ) -> tuple[list[OpRow], list[int], list[dict[str, Any]]]:
    """Pair invocations with completions; the entry order is the time."""
    rows: list[OpRow] = []
    lines: list[int] = []
    nemesis: list[dict[str, Any]] = []
    open_ops: dict[Any, tuple[int, int, str, Any, Any]] = {}
    for time, (line, process, type_, f, key, value) in enumerate(entries):
        if process == NEMESIS:
            nemesis.append({"time": time, "f": f, "value": value, "type": type_})
            continue
        if type_ == "invoke":
            if process in open_ops:
                raise HistoryError(f"{path}:{line}: process {process} invokes while its previous "
                                   f"operation is open")
            open_ops[process] = (line, time, f, key, value)
            continue
        invocation = open_ops.pop(process, None)
        if invocation is None:
            raise HistoryError(f"{path}:{line}: {type_} for process {process} with no open invocation")
        row = _row(process, invocation, time, type_, value, semantics, path, line)
        if row is not None:
            rows.append(row)
            lines.append(invocation[0])
    for process, (line, call, f, key, value) in open_ops.items():
        if f not in ("read", "get"):
            rows.append((process, call, None, f, key, value, None))
            lines.append(line)
    return rows, lines, nemesis_annotations(nemesis)


def _row(process: Any, invocation: tuple[int, int, str, Any, Any], time: int, type_: str, value: Any,
         semantics: Semantics, path: str, line: int) -> OpRow | None:
    _, call, f, key, input_ = invocation
    if type_ == "ok":
        if f == "cas":
            return (process, call, time, f, key, input_, True)
        if semantics.nil_read_unknown and value is None and f == "read":
            return None  # knossos: a nil read is always legal, so it constrains nothing
        return (process, call, time, f, key, input_, value)
    if type_ == "info":
        return None if f in ("read", "get") else (process, call, None, f, key, input_, None)
    if type_ == "fail":
        if semantics.failed_cas_ran and f == "cas":
            return (process, call, time, f, key, input_, False)
        return None
    raise HistoryError(f"{path}:{line}: type must be invoke, ok, fail or info, not {type_!r}")


def import_edn(text: str, path: str) -> ImportedHistory:
    """A Jepsen EDN history: one vector or list of maps (or maps one after another)."""
    from faultbed.checkers.edn import read_edn  # here: most histories are not EDN

    document = read_edn(text, path)
    if len(document.forms) == 1 and isinstance(document.forms[0], list):
        maps, offsets = document.forms[0], document.inner_offsets
    else:
        maps, offsets = document.forms, document.offsets
    entries = list(_edn_entries(maps, _lines_of(text, offsets), path))
    rows, lines, annotations = rows_from_entries(entries, path, Semantics(nil_read_unknown=True))
    return ImportedHistory(path, "edn", rows, lines, annotations, model=_edn_model(rows))


def _edn_entries(maps: list[Any], lines: list[int], path: str) -> Iterator[Entry]:
    for entry, line in zip(maps, lines):
        yield _entry_of_map(entry, path, line)


def _entry_of_map(entry: Any, path: str, line: int, rename: dict[str, str] | None = None) -> Entry:
    """One Jepsen map as an entry; :process an integer or a keyword, :type and :f keywords."""
    if not isinstance(entry, dict):
        raise HistoryError(f"{path}:{line}: a history entry must be a map, not {str(entry)[:60]!r}")
    for required in ("type", "process", "f"):
        if required not in entry:
            raise HistoryError(f"{path}:{line}: entry has no :{required}")
    process = entry["process"]
    if isinstance(process, bool) or not isinstance(process, (int, str)):
        raise HistoryError(f"{path}:{line}: :process must be an integer or a keyword, not {str(process)[:40]!r}")
    for name in ("type", "f"):
        if not isinstance(entry[name], str):
            raise HistoryError(f"{path}:{line}: :{name} must be a keyword, not {str(entry[name])[:40]!r}")
    f = (rename or {}).get(entry["f"], entry["f"])
    return (line, process, entry["type"], f, entry.get("key"), entry.get("value"))


def _lines_of(text: str, offsets: list[int]) -> list[int]:
    lines, line, previous = [], 1, 0
    for offset in offsets:
        line += text.count("\n", previous, offset)
        previous = offset
        lines.append(line)
    return lines


def _edn_model(rows: list[OpRow]) -> str:
    fs = {row[3] for row in rows}
    if "txn" in fs:
        return "multi-register"
    if fs & {"acquire", "release"}:
        return "mutex"
    if fs & {"enqueue", "dequeue"}:
        return "fifo-queue"
    return "cas-register"


_ETCD_LINE = re.compile(r"INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(\w+)\s+:([\w-]+)\s+(.*?)\s*")
_ETCD_CAS = re.compile(r"\[\s*(-?\d+)\s+(-?\d+)\s*\]")


def import_porcupine_etcd(text: str, path: str) -> ImportedHistory:
    """porcupine's Jepsen etcd logs: `INFO  jepsen.util - 3<TAB>:ok<TAB>:read<TAB>1`."""
    entries: list[Entry] = []
    match_line = _ETCD_LINE.fullmatch
    for number, line in enumerate(text.splitlines(), start=1):
        match = match_line(line)
        if match is None:
            if not line.strip():
                continue
            raise HistoryError(f"{path}:{number}: not a Jepsen etcd log line: {line.strip()[:80]!r}")
        process, type_, f, raw = match.groups()
        entries.append((number, _integer(process, path, number), type_, f, None, _etcd_value(raw, path, number)))
    rows, lines, annotations = rows_from_entries(entries, path, Semantics(failed_cas_ran=True))
    return ImportedHistory(path, "porcupine-etcd", rows, lines, annotations, model="cas-register")


def _etcd_value(raw: str, path: str, number: int) -> Any:
    if raw == "nil" or raw.startswith(":"):
        return None  # nil, or :timed-out on a completion whose outcome says it all
    if raw.isdigit() or (raw[:1] == "-" and raw[1:].isdigit()):
        return _integer(raw, path, number)
    cas = _ETCD_CAS.fullmatch(raw)
    if cas is None:
        raise HistoryError(f"{path}:{number}: cannot read the value {raw[:60]!r}")
    return [_integer(cas.group(1), path, number), _integer(cas.group(2), path, number)]


def _integer(text: str, path: str, number: int) -> int:
    """An integer of a log line; Python refuses more than 4,300 digits, and so do we, in one line."""
    try:
        return int(text)
    except ValueError as exc:
        raise HistoryError(f"{path}:{number}: cannot read the integer {text[:20]}...: {exc}") from exc


_KV_LINE = re.compile(r'\{:process (\d+), :type :(\w+), :f :(\w+), :key "([^"\\]*)", :value (nil|"[^"\\]*")\}')
_KV_FS = {"get": "read", "put": "write", "append": "append"}
_KV_FIRST_LINE = re.compile(r":f :(get|put|append)\b.*:key ")


def import_porcupine_kv(text: str, path: str) -> ImportedHistory:
    """porcupine's kv logs: one EDN map per line; a missing key reads as ""."""
    entries: list[Entry] = []
    match_line = _KV_LINE.fullmatch
    for number, line in enumerate(text.splitlines(), start=1):
        match = match_line(line)
        if match is not None:
            process, type_, f, key, value = match.groups()
            entries.append((number, _integer(process, path, number), type_, _KV_FS.get(f, f), key,
                            None if value == "nil" else value[1:-1]))
        elif line.strip():
            entries.append(_kv_entry_slowly(line, path, number))
    rows, lines, annotations = rows_from_entries(entries, path, Semantics())
    return ImportedHistory(path, "porcupine-kv", rows, lines, annotations, model="kv", initial="")


def _kv_entry_slowly(line: str, path: str, number: int) -> Entry:
    """A line the fast pattern does not match (escapes, other spacing): read it as EDN."""
    from faultbed.checkers.edn import read_edn

    forms = read_edn(line, f"{path}:{number}").forms
    if len(forms) != 1 or not isinstance(forms[0], dict):
        raise HistoryError(f"{path}:{number}: expected one map per line")
    return _entry_of_map(forms[0], path, number, _KV_FS)


# -- nemesis annotations ---------------------------------------------------------------

@dataclass(frozen=True)
class NemesisEvent:
    """What a nemesis event does: start or stop a fault, or happen at a point in time."""

    action: str  # start, stop or point
    fault: str   # which start a stop ends: an id, a fault name, "" (Jepsen's bare start/stop), "*" (all)
    kind: str    # the annotation row: partition, kill, ... ("" when unknown)


def classify_nemesis_event(event: dict[str, Any]) -> NemesisEvent:
    """Read f = start, stop, start-X, X-start, heal, ... and the optional fault and id fields."""
    f = str(event.get("f") or "")
    named = str(event.get("fault") or "")
    identity = str(event.get("id") or named)
    for action in ("start", "stop"):
        if f == action:
            rest = ""
        elif f.startswith(action + "-"):
            rest = f[len(action) + 1:]
        elif f.endswith("-" + action):
            rest = f[: -len(action) - 1]
        else:
            continue
        return NemesisEvent(action, identity or rest, _kind(named or rest))
    if f in ("heal", "heal-all", "stop-all"):
        return NemesisEvent("stop", identity or "*", _kind(named))
    if event.get("action") in ("start", "stop"):
        return NemesisEvent(str(event["action"]), identity or f, _kind(named or f))
    return NemesisEvent("point", identity or f, _kind(named or f))


def nemesis_annotations(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nemesis events as annotations: a start ... stop pair is one interval (still open at
    the end: until the end), anything else a point in time."""
    annotations: list[dict[str, Any]] = []
    active: dict[str, dict[str, Any]] = {}
    last_stopped: dict[str, dict[str, Any]] = {}
    for event in events:
        what = classify_nemesis_event(event)
        time = event["time"]
        details = _describe(event.get("value"))
        if what.action == "start" and what.fault in active:
            active[what.fault]["details"] = details or active[what.fault]["details"]  # Jepsen's completion
        elif what.action == "start":
            active[what.fault] = _annotation(what.kind, time, None, details, fault_color(event, what.kind))
            annotations.append(active[what.fault])
        elif what.action == "stop":
            stopping = [what.fault] if what.fault in active else list(active) if what.fault in ("", "*") else []
            for name in stopping:
                active[name]["end"] = time
                last_stopped[name] = active.pop(name)
            if not stopping and what.fault in last_stopped:
                last_stopped[what.fault]["end"] = time  # Jepsen logs a stop twice: invoked, then done
        else:
            annotations.append(_annotation(what.kind, time, time, details, fault_color(event, what.kind)))
    for annotation in annotations:
        annotation["description"] = _headline(annotation["tag"], annotation["details"])
    return annotations


def _annotation(kind: str, start: int, end: int | None, details: str, color: str) -> dict[str, Any]:
    """One row per kind of fault, so that overlapping faults of different kinds stay readable;
    coloured as its kind says (the same colour as in report.html)."""
    return {"tag": f"nemesis {kind}".strip(), "start": start, "end": end, "description": "",
            "details": details, "color": color}


def _headline(tag: str, details: str) -> str:
    """What the box says: the kind of fault, then what the nemesis said about it."""
    kind = tag.removeprefix("nemesis").strip()
    if not details or details.startswith(kind):
        return (details or kind or "fault")[:60]
    return f"{kind} {details}".strip()[:60]


def _kind(name: str) -> str:
    """partition#1, partition-majorities, kill:n1 -> partition, partition, kill."""
    return re.split(r"[-:_#\s]", name, maxsplit=1)[0]


def _describe(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):  # EDN maps may have keys JSON cannot carry (vectors, mixed types)
        return str(value)
