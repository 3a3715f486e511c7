"""Ctrl-C and SIGTERM around a run: the first one stops the run, later ones cannot cut teardown short.

`stop_on_interrupt()` turns the first SIGINT or SIGTERM into KeyboardInterrupt in the
main thread; every later one is noted on stderr and ignored until the context ends
(after teardown). `deferred_interrupts()` guards a teardown: a signal arriving inside
it is noted and acted on only after it, so a teardown started for any reason always
finishes. Both do nothing outside the main thread (only it can handle signals).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Callable, Union

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# How often a main thread waiting for another thread looks for signals (faultbed/native.py's calls
# into Go, `faultbed check`'s workers). Linux hands a signal sent to the process to any thread that
# does not block it, and one taken by another thread (ours, or Go's) wakes no wait of the main
# thread's: Python runs its handler when the main thread next runs Python code. A wait without a
# timeout then slept through Ctrl-C (in a test, 1 in 4 under load).
SIGNAL_LOOK_S = 0.05
Handler = Union[Callable[[int, Union[FrameType, None]], Any], int, signal.Handlers, None]


def _say(text: str) -> None:
    # os.write, not print: a handler may run while the main thread is inside a print
    try:
        os.write(2, f"faultbed: {text}\n".encode())
    except OSError:
        pass


def _name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class stop_on_interrupt:
    """The first SIGINT/SIGTERM raises KeyboardInterrupt; later ones are noted and ignored until exit.

    Nested uses share one state: only the outermost installs and restores the handlers, so
    a command that wraps a run keeps ignoring repeated signals until it has said what it did.
    With `until_exit` (a command about to end the process), an interrupted outermost use
    leaves signals noted and ignored instead of restoring them, so the exit code stays 130.
    """

    def __init__(self, until_exit: bool = False) -> None:
        self.until_exit = until_exit

    _depth = 0
    _received: list[int] = []
    _previous: dict[int, Handler] = {}

    @property
    def interrupted(self) -> bool:
        return bool(stop_on_interrupt._received)

    def __enter__(self) -> "stop_on_interrupt":
        if threading.current_thread() is not threading.main_thread():
            return self
        cls = stop_on_interrupt
        if cls._depth == 0:
            cls._received = []
            cls._previous = {sig: signal.signal(sig, cls._handle) for sig in SIGNALS}
        cls._depth += 1
        return self

    @staticmethod
    def _handle(signum: int, frame: FrameType | None) -> None:
        stop_on_interrupt.receive(signum, say=True)

    @staticmethod
    def receive(signum: int, say: bool) -> None:
        """The first signal raises KeyboardInterrupt; a later one is noted (said on stderr when `say`)."""
        stop_on_interrupt._received.append(signum)
        if len(stop_on_interrupt._received) == 1:
            raise KeyboardInterrupt
        if say:
            _say(f"{_name(signum)} noted; still stopping everything the run started (then exit)")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        cls = stop_on_interrupt
        cls._depth -= 1
        if cls._depth == 0:
            ignore = self.until_exit and bool(cls._received)
            for sig, handler in cls._previous.items():
                # SIG_IGN, not a Python handler: interpreter shutdown resets those to the default,
                # and a late Ctrl-C would then kill the process (exit -2 instead of 130)
                signal.signal(sig, signal.SIG_IGN if ignore else handler)
            cls._previous = {}


class deferred_interrupts:
    """Inside: SIGINT/SIGTERM are noted, not raised; on exit the first is handed to the previous handler.

    When the block is already leaving because of a KeyboardInterrupt, a noted signal is not
    raised again (the interrupt is under way).
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Handler] = {}

    def __enter__(self) -> "deferred_interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._note) for sig in SIGNALS}
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        _say(f"{_name(signum)} noted; still stopping everything the run started (then exit)")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not self.received or (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)):
            return
        first = self.received[0]
        handler = previous.get(first)
        if handler is stop_on_interrupt._handle:
            stop_on_interrupt.receive(first, say=False)  # already said when it was noted here
        elif callable(handler):
            handler(first, None)  # e.g. stop_on_interrupt's: raises KeyboardInterrupt
        elif first == signal.SIGINT or handler == signal.SIG_DFL:
            raise KeyboardInterrupt
