"""faultbed's Go library (checkers/porcupine, c-shared: porcupine's bindings, and HistoryFile's scan):
where it is, loading it, the main thread's calls into it (in_go), and the scan's call.

At the bottom, beside the history it reads: checkers/linearizable.py checks through it, and
faultbed/history.py scans long histories with it. Apart from both, so that `faultbed check` can load
the library before it imports its own modules: Go's runtime then starts on another CPU while Python
imports (about 2 ms of it, which the first check would otherwise wait for).

The main thread never calls into Go itself: `in_go` hands its calls to a thread of ours that has
called into Go before, and waits for the answer in Python. Two reasons. Go's runtime sets up a
thread's first call from C by asking glibc for the thread's stack (pthread_getattr_np), which for a
process's main thread reads and parses /proc/self/maps: 0.2-0.35 ms in `faultbed check`'s process
(some 140 mappings), against 0.05-0.1 ms for the first other thread (made at start_go, beside the
imports), 0.01-0.03 ms for later ones, and some 0.03 ms for the two hand-overs.
And a thread blocked in Go does not run Python's signal handlers: Ctrl-C during a long check did
nothing until the check ended, which then printed its verdict and exited 0; waiting in Python (and
looking for signals every SIGNAL_LOOK_S), the main thread takes Ctrl-C at once (the call it left
goes on in its thread, and is let go).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import queue
import threading
from array import array
from typing import Any, Callable, Generic, NamedTuple, TypeVar

from faultbed.errors import SetupError
from faultbed.interrupts import SIGNAL_LOOK_S

LIBRARY_ENV = "FAULTBED_PORCUPINE_LIB"


def library_path() -> str:
    """$FAULTBED_PORCUPINE_LIB, else <repo>/.tools/lib/libporcupine.so."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get(LIBRARY_ENV) or os.path.join(repo, ".tools", "lib", "libporcupine.so")


@functools.cache  # once a process
def start_go() -> None:
    """Load the bindings now: Go's runtime starts in a thread of its own while the caller goes on,
    instead of during the first check; and start the thread that calls into Go for the main thread
    (in_go), whose first call (the runtime's setting up for calls from C, after it has started) is
    made beside the caller. A library that cannot be loaded is left for the first check to report."""
    try:
        library = load_library(library_path())
    except SetupError:
        return
    _caller(library)


T = TypeVar("T")



def in_go(call: Callable[..., T], *args: Any) -> T:
    """call(*args), a call into Go: from the main thread, made by a thread of ours that has called into
    Go before (see the module's text), while the main thread waits in Python, where Ctrl-C reaches it;
    from any other thread, made there. Interrupted, the call goes on in its thread to its end, and
    its answer is dropped: `call` must free what Go returns itself."""
    return in_go_later(call, *args).answer()


def in_go_later(call: Callable[..., T], *args: Any) -> "GoCall[T]":
    """in_go without waiting (from the main thread): the call is queued, and answer() waits for it.
    The main thread's calls are made one at a time in the order queued."""
    job = GoCall(call, args)
    if threading.current_thread() is not threading.main_thread():
        job.run()
    else:
        job.caller = _caller(load_library(library_path()))
        job.caller.jobs.put(job)
    return job


class GoCall(Generic[T]):
    """One call into Go, queued for the thread that makes the main thread's calls, and its outcome."""

    def __init__(self, call: Callable[..., T], args: tuple[Any, ...]) -> None:
        self.call, self.args = call, args
        self.done = threading.Event()
        self.caller: _Caller | None = None
        self._answer: T | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._answer = self.call(*self.args)
        except BaseException as exc:  # answer() raises it
            self._error = exc
        finally:
            self.done.set()

    def answer(self) -> T:
        """The call's answer (or its exception), once it has been made."""
        try:
            while not self.done.wait(SIGNAL_LOOK_S):
                pass  # back in Python now and then: a signal another thread took is handled here
        except BaseException:
            if self.caller is not None:
                _let_go(self.caller)  # busy with this call: the next call gets a thread of its own
            raise
        if self._error is not None:
            raise self._error
        return self._answer  # type: ignore[return-value]


class _Caller:
    """A daemon thread that makes the main thread's calls into Go, one at a time."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self.jobs: queue.SimpleQueue[GoCall[Any]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, args=(library,), name="go", daemon=True).start()

    def _serve(self, library: ctypes.CDLL) -> None:
        library.FaultbedReady()  # this thread's first call into Go, at once
        while True:
            self.jobs.get().run()


_current: _Caller | None = None  # the thread making the main thread's calls
_current_lock = threading.Lock()


def _caller(library: ctypes.CDLL) -> _Caller:
    global _current
    with _current_lock:
        if _current is None:
            _current = _Caller(library)
        return _current


def _let_go(caller: _Caller) -> None:
    global _current
    with _current_lock:
        if _current is caller:
            _current = None


@functools.cache
def load_library(path: str) -> ctypes.CDLL:
    if not os.path.exists(path):
        raise SetupError(f"porcupine bindings not found at {path}: run `make setup`")
    try:
        library = ctypes.CDLL(path)
        # c_void_p, not c_char_p: the pointer must survive conversion so Go's copy can be freed.
        library.FaultbedCheck.argtypes = [ctypes.c_char_p]
        library.FaultbedCheck.restype = ctypes.c_void_p
        library.FaultbedFree.argtypes = [ctypes.c_void_p]
        library.FaultbedFree.restype = None
        library.FaultbedSubmit.argtypes = [ctypes.c_char_p]
        library.FaultbedSubmit.restype = ctypes.c_longlong
        library.FaultbedWait.argtypes = [ctypes.c_longlong]
        library.FaultbedWait.restype = ctypes.c_void_p
        library.FaultbedForget.argtypes = [ctypes.c_longlong]
        library.FaultbedForget.restype = None
        library.FaultbedReady.argtypes = []
        library.FaultbedReady.restype = None
        library.FaultbedScan.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Scan)]
        library.FaultbedScan.restype = None
        library.FaultbedScanFree.argtypes = [ctypes.POINTER(_Scan)]
        library.FaultbedScanFree.restype = None
    except (OSError, AttributeError) as exc:
        raise SetupError(f"cannot load the porcupine bindings {path} ({exc}): run `make setup`") from exc
    return library


class _Scan(ctypes.Structure):
    """checkers/porcupine/scan.go's faultbed_scan."""

    _fields_ = [("events", ctypes.c_longlong), ("size", ctypes.c_longlong), ("end", ctypes.c_longlong),
                ("offsets", ctypes.c_void_p), ("kinds", ctypes.c_void_p), ("processes", ctypes.c_void_p),
                ("fs", ctypes.c_void_p), ("times", ctypes.c_void_p), ("pairs", ctypes.c_longlong),
                ("invokes", ctypes.c_void_p), ("completions", ctypes.c_void_p), ("fnames", ctypes.c_char_p),
                ("fallback", ctypes.c_char_p)]


class Scanned(NamedTuple):
    """What Go's scan found beside the columns."""

    f_names: list[str]  # in order of appearance
    end: int  # where the last line read ends
    size: int  # the bytes read: beyond end when Go did not read a last line without its newline
    paired: tuple[array[int], array[int]] | None  # Columns.pairs's; None: the events do not pair


def scan_history(path: str, offsets: array[int], kinds: bytearray, processes: array[int], fs: array[int],
                 times: array[int]) -> Scanned | str:
    """HistoryFile's scan of the history at `path`, in Go: each event's offset, kind, process, f and
    time appended to the arrays, and the rest of what it found returned; or why Go left the file to
    Python's scan (it appends nothing then). SetupError: no library."""
    return in_go(_scan, load_library(library_path()), path, offsets, kinds, processes, fs, times)


def _scan(library: ctypes.CDLL, path: str, offsets: array[int], kinds: bytearray, processes: array[int],
          fs: array[int], times: array[int]) -> Scanned | str:
    out = _Scan()
    library.FaultbedScan(os.fsencode(path), ctypes.byref(out))
    try:
        if out.fallback is not None:
            return out.fallback.decode(errors="replace")
        # each column copied once, straight from C's memory, and handed back before the next is
        # copied: the scan's peak is what it keeps plus its largest column, not twice what it keeps
        if out.events:
            kinds[len(kinds):] = (ctypes.c_char * out.events).from_address(out.kinds)
        _free(out, "kinds")
        for column, field in ((offsets, "offsets"), (processes, "processes"), (fs, "fs"), (times, "times")):
            _copy(column, getattr(out, field), out.events)
            _free(out, field)
        paired = None
        if out.pairs >= 0:
            paired = array("q"), array("q")
            for column, field in zip(paired, ("invokes", "completions")):
                _copy(column, getattr(out, field), out.pairs)
                _free(out, field)
        return Scanned(json.loads(out.fnames or b"[]"), out.end, out.size, paired)
    finally:
        library.FaultbedScanFree(ctypes.byref(out))


def _copy(column: array[int], pointer: int | None, count: int) -> None:
    if count:
        assert pointer is not None
        column.frombytes((ctypes.c_char * (count * column.itemsize)).from_address(pointer))


def _free(out: _Scan, field: str) -> None:
    """C's free of one of the scan's columns, now (FaultbedScanFree frees the rest)."""
    _libc.free(getattr(out, field))
    setattr(out, field, None)


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None
