"""faultbed's Go library (checkers/porcupine, c-shared: porcupine's bindings, and HistoryFile's scan):
where it is, loading it, and the scan's call.

At the bottom, beside the history it reads: checkers/linearizable.py checks through it, and
faultbed/history.py scans long histories with it. Apart from both, so that `faultbed check` can load
the library before it imports its own modules: Go's runtime then starts on another CPU while Python
imports (about 2 ms of it, which the first check would otherwise wait for).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import threading
from array import array
from typing import NamedTuple

from faultbed.errors import SetupError

LIBRARY_ENV = "FAULTBED_PORCUPINE_LIB"


def library_path() -> str:
    """$FAULTBED_PORCUPINE_LIB, else <repo>/.tools/lib/libporcupine.so."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get(LIBRARY_ENV) or os.path.join(repo, ".tools", "lib", "libporcupine.so")


@functools.cache  # once a process
def start_go() -> None:
    """Load the bindings now: Go's runtime starts in a thread of its own while the caller goes on,
    instead of during the first check. The first call into Go (0.3-0.4 ms of the runtime's own
    setting up, after it has started) is made by a thread of ours, beside the caller. A library
    that cannot be loaded is left for the first check to report."""
    try:
        library = load_library(library_path())
    except SetupError:
        return
    threading.Thread(target=library.FaultbedReady, name="start-go", daemon=True).start()


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
    library = load_library(library_path())
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
