"""The porcupine bindings (checkers/porcupine, a Go c-shared library): where they are, and loading them.

Apart from checkers/linearizable.py so that `faultbed check` can load the library before it imports
its own modules: Go's runtime then starts on another CPU while Python imports (about 2 ms of it,
which the first check would otherwise wait for).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading

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
    except (OSError, AttributeError) as exc:
        raise SetupError(f"cannot load the porcupine bindings {path} ({exc}): run `make setup`") from exc
    return library
