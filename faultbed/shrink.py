"""Schedule shrinking: from a failing run, a smaller schedule and a shorter run that still fail.

A candidate is a set of the run's faults (each a start and its stop) and a time limit. The
search replays candidates (same spec and seed, the candidate's schedule) and keeps one when
it fails in `needed` of `tries` runs (nondeterminism), in this order: cut the run just after
its first anomaly, remove faults (delta debugging, Zeller's ddmin), move the faults to the
start of the run, cut the time limit to what the last fault and the failures observed need,
close the gaps between the faults, halve each fault's duration, cut the time limit again.
No run starts whose time limit no longer fits in the budget (setup and checking come on
top); the smallest candidate confirmed so far is the answer. With `confirm`, that answer
is replayed `confirm` more times and kept only when `confirm_needed` of them fail (a
candidate kept by luck, for a bug seen in some runs only, gives way to the next larger).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from faultbed.checkers.result import Valid
from faultbed.nemesis.schedule import START, STOP, FaultEvent, Schedule
from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

LEAD = 1.0            # seconds of clients alone before the first fault of a moved schedule
GAP = 1.0             # seconds between one fault's stop and the next one's start when gaps are closed
TAIL = 2.0            # seconds of run kept after the last fault stops (or the last anomaly seen)
MIN_DURATION = 0.5    # a fault is never halved below this many seconds
HALVINGS = 3          # at most this many halvings of one fault's duration
CONFIRMED_CANDIDATES = 3  # failing candidates confirmed at most, smallest first


@dataclass(frozen=True)
class Fault:
    """One fault of a schedule: its entry (`partition`), id, start and stop (seconds) and plan."""

    entry: str
    id: str
    start: float
    stop: float
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def duration(self) -> float:
        return self.stop - self.start

    def moved(self, start: float, duration: float | None = None) -> "Fault":
        length = self.duration if duration is None else duration
        return Fault(self.entry, self.id, _millis(start), _millis(start + length), self.params)

    def describe(self) -> str:
        return f"{self.id} {self.start:.1f}-{self.stop:.1f}s"


@dataclass(frozen=True)
class Candidate:
    """A smaller test: these faults, this time limit."""

    faults: tuple[Fault, ...]
    time_limit: float

    def key(self) -> tuple[Any, ...]:
        return (self.time_limit, tuple((f.id, f.start, f.stop) for f in self.faults))

    def schedule(self, base: Schedule) -> Schedule:
        """`base` with only these faults (and only the entries they belong to)."""
        entries = tuple(text for text in base.faults if any(f.entry == text for f in self.faults))
        events = []
        for fault in self.faults:
            events.append(FaultEvent(fault.start, START, fault.entry, fault.id, fault.params))
            events.append(FaultEvent(fault.stop, STOP, fault.entry, fault.id))
        order = {text: i for i, text in enumerate(entries)}
        events.sort(key=lambda e: (e.at, order[e.fault], e.action == START))
        return Schedule(seed=base.seed, nodes=base.nodes, partition_mode=base.partition_mode,
                        interval=base.interval, time_limit=self.time_limit, faults=entries, events=tuple(events))

    def spec(self, base: TestSpec, schedule: Schedule) -> TestSpec:
        return base.replace(time_limit=self.time_limit, nemesis=schedule.faults)

    def describe(self) -> str:
        faults = ", ".join(f.describe() for f in self.faults) or "no faults"
        return f"{len(self.faults)} fault(s) ({faults}), {self.time_limit:g}s"


def faults_of(schedule: Schedule) -> tuple[Fault, ...]:
    """The schedule's faults, each a start with its stop (a start never stopped lasts to the end)."""
    stops = {e.id: e.at for e in schedule.events if e.action == STOP}
    return tuple(Fault(e.fault, e.id, e.at, stops.get(e.id, schedule.time_limit), e.params)
                 for e in schedule.events if e.action == START)


@dataclass(frozen=True)
class Policy:
    """How sure and how patient: a candidate fails when `needed` of `tries` runs are invalid."""

    tries: int = 3
    needed: int = 2
    budget: float = 900.0  # seconds of wall time for the whole search
    confirm: int = 0       # then replay the minimal candidate this many more times...
    confirm_needed: int = 0  # ...and keep it only when this many of them fail (else the next larger)

    def __post_init__(self) -> None:
        if not 1 <= self.needed <= self.tries:
            raise ValueError(f"needed ({self.needed}) must be between 1 and tries ({self.tries})")
        if not 0 <= self.confirm_needed <= self.confirm:
            raise ValueError(f"confirm_needed ({self.confirm_needed}) must be between 0 and confirm ({self.confirm})")


@dataclass(frozen=True)
class Trial:
    """One run of a candidate: its verdict, results directory and first anomaly (seconds, if known)."""

    valid: Valid
    run_dir: str
    anomaly: float | None = None


Runner = Callable[[TestSpec, Schedule], Trial]


@dataclass
class Attempt:
    """A candidate tried: how its runs went and whether it counts as failing."""

    candidate: Candidate
    trials: list[Trial]
    fails: bool


class BudgetSpent(Exception):
    """The time budget is used up; the search ends with what it has confirmed."""


@dataclass(frozen=True)
class ShrinkResult:
    original: Candidate
    minimal: Candidate | None   # None: the failure never reproduced within the budget
    run_dir: str | None          # a failing run of the minimal candidate
    attempts: tuple[Attempt, ...]
    runs: int
    seconds: float
    budget_spent: bool
    confirmations: tuple[Attempt, ...] = ()  # the confirming replays, smallest candidate first


class Shrinker:
    """The search (see the module docstring); `runner` runs one candidate once."""

    def __init__(self, spec: TestSpec, schedule: Schedule, runner: Runner, policy: Policy,
                 anomaly: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.base = schedule
        self.runner = runner
        self.policy = policy
        self.anomaly = anomaly
        self.clock = clock
        self.started = clock()
        self.attempts: list[Attempt] = []
        self._known: dict[tuple[Any, ...], Attempt] = {}
        self.runs = 0
        self.best: Attempt | None = None

    # -- trying candidates --------------------------------------------------------------
    def fails(self, candidate: Candidate) -> bool:
        """Run `candidate` until `needed` runs failed or that can no longer happen."""
        known = self._known.get(candidate.key())
        if known is not None:
            return known.fails
        attempt = Attempt(candidate, [], False)
        failed = 0
        for tried in range(self.policy.tries):
            if self.policy.needed - failed > self.policy.tries - tried:
                break
            if self.clock() - self.started + candidate.time_limit > self.policy.budget:
                raise BudgetSpent()  # this run could not end within the budget
            spec_schedule = candidate.schedule(self.base)
            trial = self.runner(candidate.spec(self.spec, spec_schedule), spec_schedule)
            self.runs += 1
            attempt.trials.append(trial)
            failed += trial.valid is False
            if failed >= self.policy.needed:
                attempt.fails = True
                break
        log.info("shrink: %s -> %s (%d of %d runs invalid)", candidate.describe(),
                 "fails" if attempt.fails else "passes", failed, len(attempt.trials))
        self._known[candidate.key()] = attempt
        self.attempts.append(attempt)
        if attempt.fails and (self.best is None or _not_larger(candidate, self.best.candidate)):
            self.best = attempt
        return attempt.fails

    # -- the search ---------------------------------------------------------------------
    def shrink(self) -> ShrinkResult:
        original = Candidate(faults_of(self.base), self.spec.time_limit)
        spent = False
        try:
            current = self._start(original)
            if current is not None:
                current = self._remove_faults(current)
                current = self._move_to_start(current)
                current = self._cut_time(current)  # every later candidate runs shorter
                current = self._close_gaps(current)
                current = self._halve_durations(current)
                self._cut_time(current)
        except BudgetSpent:
            spent = True
        best, confirmations = self._confirm()
        return ShrinkResult(original, best.candidate if best else None,
                            _failing_dir(best) if best else None, tuple(self.attempts), self.runs,
                            self.clock() - self.started, spent, confirmations)

    def _confirm(self) -> tuple[Attempt | None, tuple[Attempt, ...]]:
        """The smallest failing candidate that still fails in `confirm_needed` of `confirm` more
        runs (a lucky candidate that passed `needed` of `tries` by chance is replaced by the next
        larger one, at most CONFIRMED_CANDIDATES tried); the best so far when not confirming."""
        if not self.policy.confirm or self.best is None:
            return self.best, ()
        failing = sorted((a for a in self.attempts if a.fails), key=lambda a: _size(a.candidate))
        confirmations = []
        for attempt in failing[:CONFIRMED_CANDIDATES]:
            spec_schedule = attempt.candidate.schedule(self.base)
            trials = [self.runner(attempt.candidate.spec(self.spec, spec_schedule), spec_schedule)
                      for _ in range(self.policy.confirm)]
            self.runs += len(trials)
            failed = sum(t.valid is False for t in trials)
            confirmed = Attempt(attempt.candidate, trials, failed >= self.policy.confirm_needed)
            confirmations.append(confirmed)
            log.info("shrink: confirming %s: %d of %d runs invalid", attempt.candidate.describe(), failed,
                     len(trials))
            if confirmed.fails:
                return confirmed, tuple(confirmations)
        return None, tuple(confirmations)

    def _start(self, original: Candidate) -> Candidate | None:
        """The run cut just after its first anomaly, when that still fails; else the run itself."""
        if self.anomaly is not None:
            limit = min(original.time_limit, _ceil(self.anomaly + TAIL))
            if limit < original.time_limit:
                cut = _truncate(original.faults, limit)
                if self.fails(Candidate(cut, limit)):
                    return Candidate(cut, limit)
        return original if self.fails(original) else None

    def _remove_faults(self, current: Candidate) -> Candidate:
        """ddmin over the faults, then no fault at all when one is left."""
        def fails(faults: Sequence[Fault]) -> bool:
            return self.fails(Candidate(tuple(faults), current.time_limit))

        kept = ddmin(list(current.faults), fails)
        if len(kept) == 1 and fails([]):
            kept = []
        return Candidate(tuple(kept), current.time_limit)

    def _move_to_start(self, current: Candidate) -> Candidate:
        """All faults earlier by the same amount (the first at LEAD), the run as much shorter."""
        if not current.faults:
            return current
        shift = min(f.start for f in current.faults) - LEAD
        if shift <= 0:
            return current
        moved = Candidate(tuple(f.moved(f.start - shift) for f in current.faults),
                          _ceil(max(LEAD, current.time_limit - shift)))
        return moved if self.fails(moved) else current

    def _close_gaps(self, current: Candidate) -> Candidate:
        """Each later fault (and those after it) moved up to GAP after the one before stops."""
        for index in range(1, len(current.faults)):
            before, fault = current.faults[index - 1], current.faults[index]
            shift = fault.start - max(before.stop + GAP, before.start)
            if shift <= 0:
                continue
            faults = current.faults[:index] + tuple(f.moved(f.start - shift) for f in current.faults[index:])
            closer = Candidate(faults, _ceil(max(LEAD, current.time_limit - shift)))
            if self.fails(closer):
                current = closer
        return current

    def _halve_durations(self, current: Candidate) -> Candidate:
        """Each fault in turn at half its length (faults after it closer by as much), while it fails."""
        for index in range(len(current.faults)):
            for _ in range(HALVINGS):
                fault = current.faults[index]
                if fault.duration / 2 < MIN_DURATION:
                    break
                saving = fault.duration / 2
                faults = list(current.faults)
                faults[index] = fault.moved(fault.start, fault.duration / 2)
                for later in range(len(faults)):  # those after it move up; those overlapping it stay
                    if faults[later].start >= fault.stop:
                        faults[later] = faults[later].moved(faults[later].start - saving)
                shorter = Candidate(tuple(faults), _ceil(max(LEAD, current.time_limit - saving)))
                if not self.fails(shorter):
                    break
                current = shorter
        return current

    def _cut_time(self, current: Candidate) -> Candidate:
        """The time limit down to the last fault's stop (or the latest anomaly seen) plus TAIL."""
        last = max((f.stop for f in current.faults), default=0.0)
        seen = [t.anomaly for t in self._known[current.key()].trials if t.valid is False and t.anomaly is not None]
        need = max([last] + ([max(seen)] if seen else []))
        limit = _ceil(max(need + TAIL, LEAD))
        if limit < current.time_limit:
            cut = Candidate(current.faults, limit)
            if self.fails(cut):
                return cut
        return current


def ddmin(items: list[Fault], fails: Callable[[Sequence[Fault]], bool]) -> list[Fault]:
    """A 1-minimal failing subset of `items` (which fail): Zeller's delta debugging."""
    parts = 2
    while len(items) >= 2:
        chunks = _split(items, parts)
        for chunk in chunks:
            if fails(chunk):
                items, parts = chunk, 2
                break
        else:
            for chunk in chunks:
                rest = [item for item in items if item not in chunk]
                if len(chunks) > 2 and fails(rest):
                    items, parts = rest, max(parts - 1, 2)
                    break
            else:
                if parts >= len(items):
                    break
                parts = min(len(items), parts * 2)
    return items


def _split(items: list[Fault], parts: int) -> list[list[Fault]]:
    size, extra = divmod(len(items), parts)
    chunks, at = [], 0
    for number in range(parts):
        length = size + (1 if number < extra else 0)
        chunks.append(items[at:at + length])
        at += length
    return [c for c in chunks if c]


def _truncate(faults: Sequence[Fault], limit: float) -> tuple[Fault, ...]:
    """The faults that start before `limit`, stopped by it."""
    return tuple(f if f.stop <= limit else Fault(f.entry, f.id, f.start, limit, f.params)
                 for f in faults if f.start < limit)


def _size(c: Candidate) -> tuple[int, float, float]:
    """Fewer faults, then a shorter run, then less time under faults."""
    return len(c.faults), c.time_limit, sum(f.duration for f in c.faults)


def _not_larger(a: Candidate, b: Candidate) -> bool:
    """`a` is no larger than `b` (a later equal one wins)."""
    return _size(a) <= _size(b)


def _failing_dir(attempt: Attempt) -> str | None:
    return next((t.run_dir for t in attempt.trials if t.valid is False), None)


def _ceil(seconds: float) -> float:
    """Whole seconds up: time limits people can read."""
    return float(math.ceil(seconds - 1e-9))


def _millis(seconds: float) -> float:
    return math.floor(seconds * 1000) / 1000
