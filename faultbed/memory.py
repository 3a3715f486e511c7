"""The check's memory bound: its settings, and the bound kept on checkers written in Python.

A check stops with verdict unknown, and says why, when the process passes the memory limit
(default MEMORY_FRACTION of the machine, `--memory-limit`, $FAULTBED_CHECK_MEMORY_MB), or when
the machine's available memory (MemAvailable) falls below a floor while the process holds more
than FLOOR_HOLD_MB: checks side by side (a suite's workers, parallel jobs) may each stay within
their own limit and still, together, take the machine. Go's search keeps the bound itself
(checkers/porcupine/segments.go, memoryLimit). A checker in Python (queue, idempotency,
raft-invariants, stats, a user's) holds whatever it builds; `Bound` keeps it for them:
check_safe runs each inside one. A thread samples the process's resident memory every
SAMPLE_S; past the bound, OutOfMemoryBound is raised in the checker's thread, and check_safe
turns that into unknown with the reason. Where it is raised: long reads look between their
blocks (`check_bound()`, below) and raise it there, synchronously, at a point where nothing is
half done; a checker that does not come to one within GRACE_S (it computes, it does not read)
gets it asynchronously (the interpreter's PyThreadState_SetAsyncExc) at its next Python
instruction, wherever that is: a checker inside one long call into C (a sort of millions, a
huge json.loads) is stopped when that call returns, and one caught between taking a lock and
the `try` that releases it leaves the lock taken (Python code that is not a checker's, logging
for one, does that), which is why the synchronous way comes first.

The sampling thread needs the GIL, and a thread that reads a file in small blocks can keep it
from ever getting it: each read lets the GIL go and takes it back at once, and CPython asks a
holder to let go only when no switch happened during the waiter's interval (5 ms). Reading a
run's history that way, the watcher's first sample came after the check was over. So long
reads look themselves, between blocks: `check_bound()` raises OutOfMemoryBound there and then
when the watcher saw the bound passed, or when a sample of its own (at most every SAMPLE_S)
sees it. HistoryFile's reads and raft-invariants' trace reading call it; a checker that reads
its own files in a loop should too.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import threading
import time
from contextlib import contextmanager
from types import TracebackType
from typing import Iterator

from faultbed.errors import FaultbedError

MEMORY_FRACTION = 0.5  # of the machine's memory: a blown-up check is unknown before it takes the machine
MEMORY_ENV = "FAULTBED_CHECK_MEMORY_MB"
FLOOR_FRACTION, FLOOR_MAX_MB = 0.05, 1024.0  # the floor: 5 % of the machine's memory, at most 1 GB
FLOOR_ENV = "FAULTBED_CHECK_MEMORY_FLOOR_MB"
FLOOR_HOLD_MB = 256.0
SAMPLE_S = 0.01  # as Go's watch: a checker allocating 300 MB/s passes the limit by a few MB at most
GRACE_S = 0.03  # a passed bound is raised by the thread's own check_bound if it comes within this
FLOOR_EVERY = 5  # the machine's memory is read every this many samples (/proc/meminfo costs tens of us)


def default_memory_limit_mb() -> float:
    """$FAULTBED_CHECK_MEMORY_MB, else MEMORY_FRACTION of the machine's memory (0: unknown, no limit)."""
    return _megabytes(MEMORY_ENV, MEMORY_FRACTION, math.inf)


def default_memory_floor_mb() -> float:
    """$FAULTBED_CHECK_MEMORY_FLOOR_MB (0: none), else FLOOR_FRACTION of the machine's memory, at
    most FLOOR_MAX_MB."""
    return _megabytes(FLOOR_ENV, FLOOR_FRACTION, FLOOR_MAX_MB)


def _megabytes(variable: str, fraction: float, most: float) -> float:
    """$variable's megabytes, else `fraction` of the machine's memory, at most `most` (0 when the
    machine does not say)."""
    configured = os.environ.get(variable)
    if configured:
        try:
            return float(configured)
        except ValueError as exc:
            raise FaultbedError(f"${variable} must be a number of megabytes, not {configured!r}") from exc
    try:
        return min(most, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * fraction / 2**20)
    except (ValueError, OSError):
        return 0.0


def limit_reason(limit_mb: float) -> str:
    return f"memory limit of {limit_mb:.0f} MB reached"


def floor_reason(available_mb: float, held_mb: float) -> str:
    return (f"the machine's available memory fell to {available_mb:.0f} MB (the floor: "
            f"{default_memory_floor_mb():.0f} MB, ${FLOOR_ENV}) while this check held {held_mb:.0f} MB")


def resident_mb() -> float:
    """This process's resident memory (Python and Go together), 0 when the kernel does not say."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def available_mb() -> float | None:
    """The machine's MemAvailable, None when the kernel does not say."""
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, IndexError, ValueError):
        pass
    return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


_bounds = threading.local()  # each thread's Bound while it is inside one


def check_bound() -> None:
    """Between the blocks of a long read: OutOfMemoryBound now when the calling thread's Bound is
    past its limit (sampled at most every SAMPLE_S); nothing outside a Bound."""
    bound = getattr(_bounds, "current", None)
    if bound is not None:
        bound.look_here()


class OutOfMemoryBound(BaseException):
    """Raised in a checker's thread by its Bound. A BaseException, as KeyboardInterrupt is: a
    checker's own `except Exception` does not swallow it."""


class Bound:
    """`with Bound(limit_mb, floor_mb):` the code inside stops with OutOfMemoryBound when the process
    passes `limit_mb` of resident memory, or the machine's available memory falls below `floor_mb`
    while the process holds more than FLOOR_HOLD_MB (0 or less: no such bound). `reason` then says
    which. Only the thread that entered is stopped: at its next check_bound, or by an asynchronous
    exception after GRACE_S. When the code inside is done before that exception reaches it, the
    exception is withdrawn and its result stands."""

    def __init__(self, limit_mb: float, floor_mb: float) -> None:
        self.limit_mb, self.floor_mb = limit_mb, floor_mb
        self.reason: str | None = None
        self.peak_mb = 0.0
        self._thread = 0
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._inside = self._raised = self._asynchronous = False
        self._due = 0.0  # when the watcher raises, if the thread has not looked by then
        self._watcher: threading.Thread | None = None
        self._outer: Bound | None = None
        self._samples = 0
        self._looked = 0.0  # when check_bound last sampled

    def __enter__(self) -> Bound:
        if self.limit_mb > 0 or self.floor_mb > 0:
            self._thread, self._inside = threading.get_ident(), True
            self._outer, _bounds.current = getattr(_bounds, "current", None), self
            self._watcher = threading.Thread(target=self._watch, name="memory-bound", daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        with self._lock:
            if self._inside:
                _bounds.current = self._outer
            self._inside = False
            if self._asynchronous:  # raised in the thread and not arrived yet (a checker done first): withdrawn
                _raise_in(self._thread, None)
        self._done.set()
        if self._watcher is not None:
            self._watcher.join()

    def _watch(self) -> None:
        while not self._done.wait(SAMPLE_S):
            reason = self._sample()
            with self._lock:
                if not self._inside or self._raised:
                    return
                if self.reason is None and reason is not None:  # the thread's next check_bound raises
                    self.reason, self._due = reason, time.monotonic() + GRACE_S
                if self.reason is not None and time.monotonic() >= self._due:  # it did not come to one
                    self._raised = self._asynchronous = True
                    _raise_in(self._thread, OutOfMemoryBound)
                    return

    def look_here(self) -> None:
        """check_bound's: raise now when the watcher saw the bound passed, or a sample taken here
        (unless one is recent) sees it."""
        if self.reason is None:
            now = time.monotonic()
            if now - self._looked < SAMPLE_S:
                return
            self._looked = now
            reason = self._sample()
            if reason is None:
                return
        with self._lock:
            if not self._inside or self._raised:
                return  # the watcher's exception is on its way
            self.reason = self.reason or reason
            self._raised = True
        raise OutOfMemoryBound(self.reason)

    def _sample(self) -> str | None:
        """Why the bound is passed now (None: it is not)."""
        held = resident_mb()
        self.peak_mb = max(self.peak_mb, held)
        self._samples += 1
        if 0 < self.limit_mb < held:
            return limit_reason(self.limit_mb)
        if self.floor_mb > 0 and held > FLOOR_HOLD_MB and self._samples % FLOOR_EVERY == 1:
            available = available_mb()
            if available is not None and available < self.floor_mb:
                return floor_reason(available, held)
        return None


@contextmanager
def cycles_uncollected() -> Iterator[None]:
    """Python's cycle collector paused inside (reference counting goes on): for a pass that builds
    millions of objects it keeps, and makes no cycles. The collector runs as objects are made, and
    each full collection walks every object kept so far: raft-invariants over a 10-minute run's
    traces (2.4M records, their lines kept by index) spent half its 19 s there (10 s paused, the
    same peak). Paused while any thread is inside; resumed when the last leaves, unless it was
    paused before the first came in."""
    global _pausing, _resume
    with _pause_lock:
        if _pausing == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausing -= 1
            if _pausing == 0 and _resume:
                gc.enable()


_pause_lock = threading.Lock()
_pausing = 0  # threads inside cycles_uncollected
_resume = False  # whether the collector ran before the first came in


def _raise_in(thread: int, exception: type[BaseException] | None) -> None:
    """Raise `exception` in `thread` at its next Python instruction (None: withdraw one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread),
                                               ctypes.py_object(exception) if exception is not None else None)
