"""Internal errors (bugs in faultbed): the traceback goes to a file, the user gets one line.

A crash is never an anomaly: it exits with its own code (255, Jepsen's choice),
and the traceback is written into the run directory when the crash happened in
a run, else under the state directory (or the system's temporary directory).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import traceback
from contextlib import contextmanager
from typing import Any, Iterator

EXIT_INTERNAL = 255
EXIT_INTERRUPTED = 130
TRACEBACK_FILE = "faultbed-traceback.txt"
_RUN_DIR_ATTRIBUTE = "faultbed_run_dir"


_current_run_dir: str | None = None   # the run going on in this process, where tracebacks go


@contextmanager
def run_dir_on_error(run_dir: str) -> Iterator[None]:
    """Mark any exception escaping the block with the run directory it happened in; tracebacks
    logged during the block (OneLineFormatter) go to that directory too."""
    global _current_run_dir
    outer, _current_run_dir = _current_run_dir, run_dir
    try:
        yield
    except Exception as exc:
        if getattr(exc, _RUN_DIR_ATTRIBUTE, None) is None:
            setattr(exc, _RUN_DIR_ATTRIBUTE, run_dir)
        raise
    finally:
        _current_run_dir = outer


def where(exc: BaseException) -> str:
    """`file:line` of the innermost frame of the traceback (where the bug surfaced)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown location"
    last = frames[-1]
    parts = last.filename.split(os.sep)
    short = os.sep.join(parts[-2:]) if len(parts) >= 2 else last.filename
    return f"{short}:{last.lineno}"


def save_traceback(exc: BaseException, run_dir: str | None = None) -> str:
    """Write the full traceback to a file (in `run_dir`, or the one the exception is marked with,
    when there is one) and return its path, or why it could not be written."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = run_dir or getattr(exc, _RUN_DIR_ATTRIBUTE, None) or _current_run_dir
    candidates = []
    if isinstance(run_dir, str) and os.path.isdir(run_dir):
        candidates.append(os.path.join(run_dir, TRACEBACK_FILE))
    state_dir = os.environ.get("FAULTBED_STATE_DIR", "/tmp/faultbed-runs")
    name = f"traceback-{stamp}-{os.getpid()}.txt"
    candidates += [os.path.join(state_dir, "tracebacks", name),
                   os.path.join(tempfile.gettempdir(), f"faultbed-{name}")]
    problems = []
    for path in candidates:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError as error:
            problems.append(f"{path}: {error.strerror}")
    return f"(not saved: {'; '.join(problems)})"


def describe(exc: BaseException) -> str:
    """The one line a user sees for a bug in faultbed."""
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    name = type(exc).__name__ + (f": {message}" if message else "")
    return (f"faultbed: internal error (a bug in faultbed, not in the system under test): {name} at "
            f"{where(exc)}; traceback: {save_traceback(exc)}")


class OneLineFormatter(logging.Formatter):
    """Log records stay one line each: a logged exception's traceback goes to a file (the run
    directory's faultbed-traceback.txt during a run), and the line names it."""

    def formatException(self, ei: Any) -> str:
        exc = ei[1]
        if not isinstance(exc, BaseException):
            return ""
        return f"({type(exc).__name__}: {str(exc)[:200]}; traceback: {save_traceback(exc)})"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line.replace("\n", " ")
