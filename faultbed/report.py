"""report.html: one results directory as a page a person can read in a minute.

The page shows the verdict of every checker, latency and throughput over time
with the faults shaded, the spec, the fault timeline, links to the porcupine
visualization and the raw files, and the last lines of every node's log. Plots
are matplotlib PNGs (Agg, no pyplot state) embedded as base64, so the page is a
single file that can be mailed or uploaded as a CI artifact.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
from array import array
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence, overload

from faultbed import store
from faultbed.checkers.result import trace_anomaly
from faultbed.errors import FaultbedError, HistoryError
from faultbed.message_counts import messages_section
from faultbed.run_files import read_results, read_spec
from faultbed.history import (DEFAULT_FAULT_COLOR, EVENT_TYPES, NEMESIS, Columns, HistoryFile, Paired, fault_color,
                              iter_history, paired_columns, pairs)

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
MAX_SCATTER = 20_000  # points of one outcome drawn in the latency plot; more take minutes and say nothing more
FULL_VISUALIZATION = "linearizability-full.html"  # next to the minimal one, when the checker drew both
MAX_DETAIL_CHARS = 20000
OP_COLORS = {"ok": "#2e9e44", "fail": "#d62728", "info": "#f0a30a"}
OP_MARKERS = {"ok": ".", "fail": "x", "info": "^"}
FAULT_ALPHA = 0.45  # kinds' colours are light (Jepsen's perf palette); the lines stay readable
VERDICT_CLASS = {True: "valid", False: "invalid"}
START_WORDS = ("start",)
STOP_WORDS = ("stop", "heal")


@dataclass(frozen=True)
class FaultInterval:
    """One fault, from its start event to its stop event (None: still active at the end)."""

    name: str
    start: float
    stop: float | None
    description: str = ""
    color: str = ""   # its kind's colour (history.fault_color)


@dataclass(frozen=True)
class OpPoint:
    """One completed client operation: when it was invoked, how long it took, how it ended."""

    time: float
    latency_ms: float
    type: str
    f: str


class Points(Sequence[OpPoint]):
    """Completed operations in invocation order, as columns: 21 bytes an operation, where a list of
    OpPoints takes about 300 (a 10-minute max-rate run completes a million operations, an hour six).
    Reading one gives an OpPoint; a slice or a selection is Points again."""

    def __init__(self, times: array[float] | None = None, latencies: array[float] | None = None,
                 types: bytearray | None = None, fs: array[int] | None = None,
                 names: tuple[list[str], list[str]] | None = None) -> None:
        self.times = times if times is not None else array("d")
        self.latencies = latencies if latencies is not None else array("d")
        self.types = types if types is not None else bytearray()  # into names[0]
        self.fs = fs if fs is not None else array("I")  # into names[1]
        self.names = names if names is not None else ([], [])  # outcomes and fs (a fresh pair: not shared)

    def append(self, time: float, latency_ms: float, type_: str, f: str) -> None:
        self.times.append(time)
        self.latencies.append(latency_ms)
        self.types.append(_code(self.names[0], type_))
        self.fs.append(_code(self.names[1], f))

    def __len__(self) -> int:
        return len(self.times)

    @overload
    def __getitem__(self, index: int) -> OpPoint: ...

    @overload
    def __getitem__(self, index: slice) -> "Points": ...

    def __getitem__(self, index: int | slice) -> "OpPoint | Points":
        if isinstance(index, slice):
            return Points(self.times[index], self.latencies[index], self.types[index], self.fs[index], self.names)
        return OpPoint(self.times[index], self.latencies[index], self.names[0][self.types[index]],
                       self.names[1][self.fs[index]])

    def __iter__(self) -> Iterator[OpPoint]:
        types, fs = self.names
        for time, latency, type_, f in zip(self.times, self.latencies, self.types, self.fs):
            yield OpPoint(time, latency, types[type_], fs[f])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (Points, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    @classmethod
    def of(cls, points: Iterable[OpPoint]) -> "Points":
        made = cls()
        for p in points:
            made.append(p.time, p.latency_ms, p.type, p.f)
        return made

    def select(self, chosen: Iterable[int]) -> "Points":
        """The points at these positions, in their order."""
        picked = Points(names=self.names)
        for i in chosen:
            picked.times.append(self.times[i])
            picked.latencies.append(self.latencies[i])
            picked.types.append(self.types[i])
            picked.fs.append(self.fs[i])
        return picked

    def where(self, mask: Any) -> "Points":
        """The points where a numpy mask is true (a million in milliseconds: the plots' selections)."""
        return Points(_array(self.times, mask), _array(self.latencies, mask), _bytes(self.types, mask),
                      _array(self.fs, mask), self.names)

    def of_type(self, type_: str) -> "Points":
        if type_ not in self.names[0]:
            return Points(names=self.names)
        return self.where(_view(self.types) == self.names[0].index(type_))

    def invoked_before(self, time: float) -> "Points":
        return self.where(_view(self.times) < time)

    def count_of(self, type_: str) -> int:
        return self.types.count(self.names[0].index(type_)) if type_ in self.names[0] else 0

    def ends(self) -> Any:
        """Each operation's completion time (s), as a numpy array."""
        return _view(self.times) + _view(self.latencies) / 1000


def _numpy() -> Any:
    import numpy  # here: drawing needs it (matplotlib imports it too); reading the store does not

    return numpy


def _view(column: array[Any] | bytearray) -> Any:
    """A numpy array over a column's memory (no copy)."""
    np = _numpy()
    return np.frombuffer(column, dtype=np.uint8 if isinstance(column, bytearray) else column.typecode)


def _array(column: array[Any], mask: Any) -> array[Any]:
    """The column's values where the mask is true, as a column."""
    return array(column.typecode, _view(column)[mask].tobytes())


def _bytes(column: bytearray, mask: Any) -> bytearray:
    return bytearray(_view(column)[mask].tobytes())


def _code(names: list[str], name: str) -> int:
    try:
        return names.index(name)  # a handful of outcomes and functions
    except ValueError:
        names.append(name)
        return len(names) - 1


# -- reading the history --------------------------------------------------------------

def _seconds(event: dict[str, Any]) -> float:
    return float(event.get("time", 0)) / 1e9


def _fault_phase(event: dict[str, Any]) -> tuple[str | None, str]:
    """('start' | 'stop' | None, fault name) of a nemesis event: f is start-<kind>, stop-<kind> or heal."""
    f = str(event.get("f", ""))
    for word in START_WORDS + STOP_WORDS:
        if f == word or f.startswith(word + "-"):
            phase = "start" if word in START_WORDS else "stop"
            return phase, str(event.get("fault") or f[len(word) + 1:])
    return None, str(event.get("fault") or f)


def _describe_fault(event: dict[str, Any]) -> str:
    value = event.get("value")
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, default=str, sort_keys=True)[:200]


def fault_intervals(events: Iterable[dict[str, Any]]) -> list[FaultInterval]:
    """Pair the nemesis's start and stop events into intervals (seconds since the test started).

    A stop closes the open fault with the same `id` (else the latest of the same name);
    a bare stop ("heal") closes every open fault. A start that failed (it has an
    `error`) never opened anything; a fault never stopped lasts to the end (stop None).
    """
    open_faults: list[tuple[str, str, float, str, str]] = []  # (id, name, start, description, color)
    closed: list[FaultInterval] = []
    for event in events:
        if event.get("process") != NEMESIS or event.get("type") == "invoke":
            continue
        phase, name = _fault_phase(event)
        fault_id = str(event.get("id") or name)
        if phase == "start" and not event.get("error"):
            open_faults.append((fault_id, name, _seconds(event), _describe_fault(event), fault_color(event)))
        elif phase == "stop":
            bare = str(event.get("f")) in STOP_WORDS and "id" not in event
            closing = [i for i, o in enumerate(open_faults) if bare or o[0] == fault_id]
            if not closing:
                closing = [i for i, o in enumerate(open_faults) if o[1] == name][-1:]
            for index in sorted(closing, reverse=True):
                _, fault, start, description, color = open_faults.pop(index)
                closed.append(FaultInterval(fault, start, _seconds(event), description, color))
    closed += [FaultInterval(name, start, None, d, color) for _, name, start, d, color in open_faults]
    return sorted(closed, key=lambda interval: interval.start)


def first_anomalies(results: Any, origin: float) -> list[tuple[float, str]]:
    """(seconds since the test started, description) of each checker's first anomalous operation.

    Checkers give its time in ms since the first client invocation (`first_anomaly.time_ms`); origin is
    that invocation's time (Scan.origin).
    """
    if not isinstance(results, dict):
        return []
    found = []
    for result in results.get("results") or []:
        anomaly = (result.get("details") or {}).get("first_anomaly")
        if isinstance(anomaly, dict) and isinstance(anomaly.get("time_ms"), (int, float)):
            what = trace_anomaly(anomaly) or " ".join(
                json.dumps(anomaly.get(k), default=str) if k != "f" else str(anomaly.get(k))
                for k in ("f", "key", "value") if anomaly.get(k) is not None)
            if anomaly.get("output") is not None:
                what += f" -> {json.dumps(anomaly['output'], default=str)}"
            if anomaly.get("proven_first") is False:  # the search for an earlier one ran out of time
                what += " (an anomaly; an earlier one not ruled out in time)"
            found.append((origin + anomaly["time_ms"] / 1000, f"{result.get('checker')}: {what}"))
    return found


def op_points(events: Iterable[dict[str, Any]]) -> Points:
    """Every client operation that completed, as (invoke time, latency, outcome), in invocation order."""
    return scan(events).points


@dataclass
class Scan:
    """What the report needs of a history, read in one pass: a long run's events are never all held
    (a 10-minute max-rate run has two million); malformed pairing is the `error`, as pair_operations says it."""

    points: Points
    nemesis: list[dict[str, Any]]
    origin: float = 0.0  # the first client invocation
    error: str | None = None


def scan(events: Iterable[dict[str, Any]], path: str = "history") -> Scan:
    """Pair invocations with completions as the events come (history.pairs), keeping only a point a
    completed operation and the nemesis's events. A line that is not an event (iter_history's
    HistoryError) is raised; a pairing error ends the points, not the faults. A HistoryFile whose
    columns hold every event is read from them: only its nemesis's events are parsed."""
    found = paired_columns(events)
    if found is not None:
        try:
            return _scan_columns(*found)
        except ImportError:  # no numpy (a host without matplotlib: its page has no plots): the events' pass
            pass
    nemesis: list[dict[str, Any]] = []
    completed = Points()  # in the order they completed
    numbers = array("q")  # and their places in invocation order
    source = _Source(events)
    try:
        for number, invoke, completion in pairs(source, path, nemesis):
            if completion is not None:
                start = _seconds(invoke)
                completed.append(start, max(0.0, (_seconds(completion) - start) * 1000), completion["type"],
                                 invoke["f"])
                numbers.append(number)
    except HistoryError as exc:
        if source.failed:
            raise
        nemesis += [event for event in source if event.get("process") == NEMESIS]  # the faults are still drawn
        return Scan(Points(), nemesis, source.origin or 0.0, str(exc))
    return Scan(completed.select(sorted(range(len(numbers)), key=numbers.__getitem__)), nemesis,
                source.origin or 0.0)


def _scan_columns(events: HistoryFile, columns: Columns, paired: Paired) -> Scan:
    """scan() from a HistoryFile's columns, as numpy arrays: the same points in the same order, and
    the same outcome and f tables (Points.names: in the order scan() meets them, completion order)."""
    np = _numpy()
    invokes, completions = (np.frombuffer(column, dtype=np.int64) for column in paired)
    done = completions >= 0
    invokes, completions = invokes[done], completions[done]
    times = np.frombuffer(columns.times, dtype=np.int64)
    start = times[invokes].astype(np.float64) / 1e9  # as _seconds reads an event
    latencies = np.maximum(0.0, (times[completions].astype(np.float64) / 1e9 - start) * 1000)
    types, type_names = _first_seen(np.frombuffer(columns.kinds, dtype=np.uint8)[completions], EVENT_TYPES)
    fs, f_names = _first_seen(np.frombuffer(columns.fs, dtype=np.int32)[invokes], columns.f_names)
    order = np.argsort(invokes, kind="stable")  # invocation order
    points = Points(array("d", start[order].tobytes()), array("d", latencies[order].tobytes()),
                    bytearray(types[order].astype(np.uint8).tobytes()),
                    array("I", fs[order].astype(np.uint32).tobytes()), (type_names, f_names))
    first = columns.first_invocation()
    return Scan(points, list(events.nemesis()), 0.0 if first is None else float(columns.times[first]) / 1e9)


def _first_seen(values: Any, names: Sequence[str]) -> tuple[Any, list[str]]:
    """values (places in names) recoded by the order in which each first comes, and those names."""
    np = _numpy()
    seen, first = np.unique(values, return_index=True)
    order = np.argsort(first)
    rank = np.empty(len(seen), dtype=np.int64)
    rank[order] = np.arange(len(seen))
    return rank[np.searchsorted(seen, values)], [names[value] for value in seen[order]]


class _Source:
    """The events, noting the first client invocation's time and whether reading them failed (then it
    is not a pairing error)."""

    def __init__(self, events: Iterable[dict[str, Any]]) -> None:
        self.events = iter(events)
        self.failed = False
        self.origin: float | None = None

    def __iter__(self) -> _Source:
        return self

    def __next__(self) -> dict[str, Any]:
        try:
            event = next(self.events)
        except HistoryError:
            self.failed = True
            raise
        if self.origin is None and event.get("type") == "invoke" and event.get("process") != NEMESIS:
            self.origin = _seconds(event)
        return event


def throughput(points: Sequence[OpPoint], bucket: float = 1.0) -> dict[str, tuple[list[float], list[float]]]:
    """Per outcome type: bucket start times and completed operations per second."""
    if not points:
        return {}
    np = _numpy()
    columns = points if isinstance(points, Points) else Points.of(points)
    ends = columns.ends()
    last = float(ends.max())
    buckets = int(last // bucket) + 1
    indexes = (ends // bucket).astype(np.int64)
    codes = _view(columns.types)
    counts = {t: [0] * buckets for t in OP_COLORS}
    seen, first = np.unique(codes, return_index=True)
    for code in seen[np.argsort(first)]:  # outcomes beyond OP_COLORS in the order they come
        counts[columns.names[0][code]] = np.bincount(indexes[codes == code], minlength=buckets).tolist()
    times = [i * bucket for i in range(buckets)]
    # the last bucket is only partly covered: dividing by its full width would show a false drop
    widths = [bucket] * (buckets - 1) + [max(last - times[-1], bucket / 4)]
    return {t: (times, [c / w for c, w in zip(series, widths)]) for t, series in counts.items() if any(series)}


# -- plots ------------------------------------------------------------------------

def _figure() -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global backend, safe in threads

    figure = Figure(figsize=(10, 3.3), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _shade_faults(axes: Any, intervals: list[FaultInterval], end: float) -> None:
    """Shade each fault's interval in its kind's colour; one legend entry per fault name."""
    named: set[str] = set()
    for interval in intervals:
        first = interval.name not in named
        named.add(interval.name)
        stop = interval.stop if interval.stop is not None else end
        axes.axvspan(interval.start, max(stop, interval.start + 0.05), color=interval.color or DEFAULT_FAULT_COLOR,
                     alpha=FAULT_ALPHA, lw=0, label=f"fault: {interval.name}" if first else None)


@dataclass(frozen=True)
class Timeline:
    """What the plots show: operations, faults, first anomalies, and when the faults were healed."""

    points: Points
    intervals: list[FaultInterval]
    anomalies: Sequence[tuple[float, str]] = ()
    healed_at: float | None = None  # after it: final reads / drain, not the main phase

    @property
    def end(self) -> float:
        """Where the time axis ends: the last completion or fault event (at least 1 s)."""
        last = float(self.points.ends().max()) if self.points else 0.0
        return max(last, *[i.stop or i.start for i in self.intervals], self.healed_at or 0.0, 1.0)


def healed_at(events: list[dict[str, Any]]) -> float | None:
    """When the nemesis healed everything at the end of the main phase (its last `heal` event)."""
    heals = [_seconds(e) for e in events if e.get("process") == NEMESIS and e.get("f") == "heal"]
    return heals[-1] if heals else None


def _decorate(axes: Any, timeline: Timeline) -> None:
    """Faults shaded, the final phase greyed, first anomalies as dashed lines, an empty run said so."""
    _shade_faults(axes, timeline.intervals, timeline.end)
    if timeline.healed_at is not None:
        axes.axvspan(timeline.healed_at, timeline.end, color="#999999", alpha=0.12, lw=0,
                     label="healed: final reads")
    for number, (at, _) in enumerate(timeline.anomalies):
        axes.axvline(at, color="#b71c1c", linestyle="--", linewidth=1.2,
                     label="first anomaly" if number == 0 else None)
    if not timeline.points:
        axes.text(0.5, 0.5, "no operation completed", transform=axes.transAxes, ha="center", color="#a05a00")


def _finish(axes: Any, timeline: Timeline, title: str, ylabel: str) -> None:
    axes.set_xlim(0, timeline.end)
    axes.set_xlabel("time since start (s)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def sampled(points: Sequence[OpPoint], type_: str, most: int | None = None) -> tuple[Sequence[OpPoint], str]:
    """At most `most` (MAX_SCATTER) of points to draw, every n-th of a long run, and the legend's label
    saying so."""
    every = -(-len(points) // (most or MAX_SCATTER))
    return points[::every], f"{type_} ({len(points)}{f', 1 in {every} shown' if every > 1 else ''})"


def plot_latency(timeline: Timeline) -> str:
    """Latency of every operation over time (log scale), colored by outcome; base64 PNG."""
    figure, axes = _figure()
    _decorate(axes, timeline)
    for type_, color in OP_COLORS.items():
        chosen = timeline.points.of_type(type_)
        if chosen:
            shown, label = sampled(chosen, type_)
            axes.scatter([p.time for p in shown], [max(p.latency_ms, 0.01) for p in shown],
                         s=14 if type_ == "ok" else 22, marker=OP_MARKERS[type_], color=color,
                         label=label, alpha=0.75, linewidths=1 if type_ == "fail" else 0)
    if timeline.points:
        axes.set_yscale("log")
    _finish(axes, timeline, "Latency of each operation", "latency (ms)")
    return _png(figure)


def plot_throughput(timeline: Timeline) -> str:
    """Completed operations per second by outcome during the main phase, faults shaded; base64 PNG."""
    figure, axes = _figure()
    _decorate(axes, timeline)
    main_end = timeline.healed_at if timeline.healed_at is not None else timeline.end
    main_phase = timeline.points.invoked_before(main_end)  # final reads come in a burst
    for type_, (times, rates) in throughput(main_phase).items():
        # one more point, so that the last bucket is drawn as a step too
        axes.step(times + [main_end], rates + rates[-1:], where="post", color=OP_COLORS.get(type_, "black"),
                  label=type_)
    axes.set_ylim(bottom=0)
    _finish(axes, timeline, "Throughput (completions per second)", "operations / s")
    return _png(figure)


# -- the page ---------------------------------------------------------------------

def write_report(run_dir: str, history: HistoryFile | None = None) -> str:
    """Write <run_dir>/report.html from what the run stored; returns its path. `history`: the run's
    history.jsonl as its check read it (its columns spare the report a pass over the events)."""
    page = render_report(run_dir, history)
    path = os.path.join(run_dir, store.REPORT_HTML)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, path)
    log.info("report: %s", path)
    return path


def render_report(run_dir: str, history: HistoryFile | None = None) -> str:
    """The report page of one results directory, as HTML text (`history`: as write_report's)."""
    if not os.path.isfile(os.path.join(run_dir, store.SPEC)):
        raise FaultbedError(f"{run_dir}: not a results directory (no {store.SPEC})")
    spec = read_spec(run_dir).to_json()  # a malformed spec or results.json is one line (exit 3)
    results = read_results(run_dir) if os.path.exists(os.path.join(run_dir, store.RESULTS)) else None
    read, history_error = _read_events(run_dir, history)
    history_error = history_error or read.error
    points = read.points
    intervals = fault_intervals(read.nemesis)
    anomalies = first_anomalies(results, read.origin)
    stamp = os.path.basename(os.path.realpath(run_dir))  # store/latest names the run it points at
    title = f"{spec.get('system', '?')} {spec.get('workload', '?')} — {stamp}"
    body = "\n".join([
        _header_section(title, results, points, run_dir, anomalies),
        _checkers_section(results),
        _plots_section(Timeline(points, intervals, anomalies, healed_at(read.nemesis)), history_error),
        _faults_section(intervals),
        messages_section(run_dir),
        _spec_section(spec),
        _files_section(run_dir),
        _logs_section(run_dir),
    ])
    return PAGE.format(title=_e(f"faultbed: {title}"), style=STYLE, body=body)


def verdict_class(valid: Any) -> str:
    """'valid', 'invalid' or 'unknown' (also for a run without a verdict)."""
    return VERDICT_CLASS.get(valid, "unknown") if isinstance(valid, bool) else "unknown"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _read_events(run_dir: str, history: HistoryFile | None = None) -> tuple[Scan, str | None]:
    """The HistoryFile given; else, for a run that is over (its results.json written after its
    history), the history as a HistoryFile, whose columns spare the points a parse of every event
    (`faultbed report` of a 1M-operation run: 10-12 s -> 7-8 s, most of it the scan); else (a run
    still going, or one stopped before its check) the history read in one pass (iter_history
    streams it: its events are never all held)."""
    path = os.path.join(run_dir, store.HISTORY)
    if history is None and not os.path.exists(path):
        return Scan(Points(), []), "no history.jsonl in this results directory"
    try:
        if history is None and _over(run_dir):
            with HistoryFile(path) as whole:
                return scan(whole), None
        return scan(iter_history(path) if history is None else history), None
    except HistoryError as exc:  # a line that is not an event: nothing of the history is drawn
        return Scan(Points(), []), str(exc)


def _over(run_dir: str) -> bool:
    """Whether the run is over: its results.json is written after its history, which no longer grows."""
    return os.path.exists(os.path.join(run_dir, store.RESULTS))


def _verdict_badge(valid: Any) -> str:
    word = {"valid": "valid", "invalid": "INVALID"}.get(verdict_class(valid), "unknown")
    return f'<span class="badge {verdict_class(valid)}">{word}</span>'


def _header_section(title: str, results: Any, points: Points, run_dir: str,
                    anomalies: list[tuple[float, str]]) -> str:
    valid = results.get("valid") if isinstance(results, dict) else None
    counts = {t: points.count_of(t) for t in OP_COLORS}
    verdict = (_verdict_badge(valid) if results is not None
               else '<span class="badge unknown">no verdict (results.json missing)</span>')
    replay = results.get("replay") if isinstance(results, dict) else None
    replay = replay or f"faultbed replay {os.path.realpath(run_dir)}"
    why = ""
    if os.path.exists(os.path.join(run_dir, store.LINEARIZABILITY_HTML)):
        why = (f' &mdash; see why: <a href="{store.LINEARIZABILITY_HTML}">porcupine visualization</a>')
    return (f'<header><h1>{_e(title)}</h1>'
            f'<p id="verdict" data-valid="{verdict_class(valid)}">verdict: {verdict}{why}</p>'
            f'<p>ops: <b class="ok">{counts["ok"]} ok</b>, <b class="fail">{counts["fail"]} fail</b>, '
            f'<b class="info">{counts["info"]} info</b></p>'
            + "".join(f'<p class="anomaly">first anomaly at {at:.2f} s: <code>{_e(what)}</code> '
                      f'(the dashed line in the plots)</p>' for at, what in anomalies)
            + f'<p>replay: <code>{_e(replay)}</code></p></header>')


def _short_details(details: dict[str, Any]) -> str:
    parts = []
    for key, value in details.items():
        if isinstance(value, (dict, list)) and len(json.dumps(value, default=str)) > 80:
            shown = f"{len(value)} item(s)"
        else:
            shown = json.dumps(value, default=str)
        parts.append(f"<b>{_e(key)}</b>: {_e(shown)}")
    return "; ".join(parts[:8]) + (" …" if len(parts) > 8 else "")


def _trace_lines(name: str, violation: Any) -> str:
    """A trace checker's first violation (raft-invariants) with the node trace lines it rests on."""
    if not isinstance(violation, dict) or not isinstance(violation.get("lines"), list):
        return ""
    rows = "".join(f'<tr><td>{_e(line.get("node"))}</td><td>{_e(line.get("line"))}</td>'
                   f'<td><code>{_e(json.dumps(line.get("record"), sort_keys=True))}</code></td></tr>'
                   for line in violation["lines"] if isinstance(line, dict))
    return (f'<details open class="violation"><summary>{_e(name)}: {_e(violation.get("invariant"))} on '
            f'{_e(violation.get("node"))}: {_e(violation.get("message"))}</summary>'
            f'<table><tr><th>node</th><th>trace line</th><th>record</th></tr>{rows}</table></details>')


def _checkers_section(results: Any) -> str:
    if not isinstance(results, dict) or not results.get("results"):
        return '<section id="checkers"><h2>Checkers</h2><p>No checker results.</p></section>'
    rows, full = [], []
    for result in results["results"]:
        name, details = result.get("checker", "?"), result.get("details") or {}
        rows.append(f'<tr class="checker {verdict_class(result.get("valid"))}"><td>{_e(name)}</td>'
                    f'<td>{_verdict_badge(result.get("valid"))}</td><td>{_e(result.get("summary") or "")}</td>'
                    f'<td>{_short_details(details)}</td></tr>')
        full.append(_trace_lines(name, details.get("first_violation")))
        text = json.dumps(details, indent=2, default=str, sort_keys=True)
        if len(text) > MAX_DETAIL_CHARS:
            text = text[:MAX_DETAIL_CHARS] + "\n… (truncated; see results.json)"
        full.append(f"<details><summary>{_e(name)}: all details</summary><pre>{_e(text)}</pre></details>")
    return ('<section id="checkers"><h2>Checkers</h2><table><tr><th>checker</th><th>verdict</th>'
            f'<th>summary</th><th>details</th></tr>{"".join(rows)}</table>{"".join(full)}</section>')


def _plots_section(timeline: Timeline, history_error: str | None) -> str:
    note = f'<p class="warning">{_e(history_error)}</p>' if history_error else ""
    try:
        latency, rate = plot_latency(timeline), plot_throughput(timeline)
    except Exception as exc:  # a plotting problem must not cost the rest of the page (said in one line)
        log.warning("report: plotting failed: %s: %s", type(exc).__name__, exc)
        return f'<section id="plots"><h2>Over time</h2>{note}<p class="warning">plots failed: {_e(exc)}</p></section>'
    images = "".join(
        f'<figure><img class="plot" id="{name}-plot" alt="{name} over time" src="data:image/png;base64,{data}">'
        f'</figure>' for name, data in (("latency", latency), ("throughput", rate)))
    return f'<section id="plots"><h2>Over time</h2>{note}{images}</section>'


def _faults_section(intervals: list[FaultInterval]) -> str:
    if not intervals:
        return '<section id="faults"><h2>Faults</h2><p>No faults were injected.</p></section>'
    rows = "".join(
        f'<tr><td><span class="swatch" style="background:{_e(i.color or DEFAULT_FAULT_COLOR)}"></span>'
        f"{_e(i.name)}</td><td>{i.start:.2f}</td>"
        f"<td>{'still active at the end' if i.stop is None else f'{i.stop:.2f}'}</td>"
        f"<td>{_e(i.description)}</td></tr>" for i in intervals)
    return ('<section id="faults"><h2>Faults</h2><table><tr><th>fault</th><th>start (s)</th>'
            f'<th>stop (s)</th><th>what</th></tr>{rows}</table></section>')


def _spec_section(spec: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td><code>{_e(json.dumps(v, default=str))}</code></td></tr>"
                   for k, v in sorted(spec.items()))
    return f'<section id="spec"><h2>Spec</h2><table>{rows}</table></section>'


def _files_section(run_dir: str) -> str:
    links = []
    if os.path.exists(os.path.join(run_dir, store.LINEARIZABILITY_HTML)):
        full = os.path.exists(os.path.join(run_dir, FULL_VISUALIZATION))
        what = "the smallest prefix of the history that is not linearizable" if full else "the whole history"
        links.append(f'<li><a id="porcupine-link" href="{store.LINEARIZABILITY_HTML}">porcupine visualization'
                     f'</a> ({what}, drawn)</li>')
        if full:
            links.append(f'<li><a href="{FULL_VISUALIZATION}">porcupine visualization of the whole history</a></li>')
    for name in (store.RESULTS, store.HISTORY, store.SPEC, store.SCHEDULE, store.PLAN):
        if os.path.exists(os.path.join(run_dir, name)):
            links.append(f'<li><a href="{name}">{name}</a></li>')
    return f'<section id="files"><h2>Files</h2><ul>{"".join(links)}</ul></section>'


def _log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError as exc:
        return f"(cannot read: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _logs_section(run_dir: str) -> str:
    nodes_dir = os.path.join(run_dir, "nodes")
    names = sorted(n for n in os.listdir(nodes_dir) if n.endswith(".log")) if os.path.isdir(nodes_dir) else []
    if not names:
        return '<section id="logs"><h2>Node logs</h2><p>No node logs.</p></section>'
    parts = [f'<h3><a href="nodes/{_e(name)}">{_e(name)}</a></h3>'
             f'<pre class="log">{_e(_log_tail(os.path.join(nodes_dir, name)))}</pre>' for name in names]
    return (f'<section id="logs"><h2>Node logs</h2><p>The last {LOG_TAIL_LINES} lines of each; '
            f'the link opens the whole log.</p>{"".join(parts)}</section>')


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1060px; color: #222; }
h1 { font-size: 1.4em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left;
  vertical-align: top; }
.badge { padding: .1em .6em; border-radius: .8em; color: white; font-weight: bold; }
.swatch { display: inline-block; width: .9em; height: .9em; margin-right: .4em; border: 1px solid #aaa; vertical-align: middle; }
.badge.valid { background: #2e9e44; } .badge.invalid { background: #d62728; }
.badge.unknown { background: #e0a800; color: #222; }
b.ok { color: #2e9e44; } b.fail { color: #d62728; } b.info { color: #c07f00; }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; font-size: .85em; }
pre.log { max-height: 22em; } img.plot { max-width: 100%; border: 1px solid #eee; }
.warning { color: #a05a00; } figure { margin: .6em 0; } code { font-size: .95em; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{style}</style></head>
<body>
{body}
</body></html>
"""
