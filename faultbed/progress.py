"""The live progress line of `faultbed run` (rich): phase, elapsed of limit, ok/fail/info, ops/s, faults.

On a terminal the line is redrawn four times a second and vanishes at the end
(the summary follows); elsewhere (CI logs) a plain line is printed every few
seconds and whenever the phase changes, so a log shows where a run got stuck.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from faultbed.runner import Progress

log = logging.getLogger(__name__)

PLAIN_EVERY = 5.0
BAR_WIDTH = 20


def _bar(fraction: float) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * BAR_WIDTH))
    return "━" * filled + "╺" + "─" * (BAR_WIDTH - filled - 1) if filled < BAR_WIDTH else "━" * BAR_WIDTH


def describe(progress: "Progress", bar: bool = True) -> Text:
    """One line: where the run is, what the clients achieved, which faults are active."""
    counts = progress.counts()
    elapsed = progress.elapsed()
    line = Text()
    if progress.phase == "main":
        if bar and progress.time_limit > 0:
            line.append(_bar(elapsed / progress.time_limit) + " ", style="cyan")
        line.append(f"{elapsed:5.1f}s / {progress.time_limit:g}s  ", style="bold")
    else:
        line.append(f"[{progress.phase}]  ", style="bold cyan")
    line.append(f"ok {counts['ok']}", style="green")
    line.append("  ")
    line.append(f"fail {counts['fail']}", style="yellow")
    line.append("  ")
    line.append(f"info {counts['info']}", style="magenta")
    if progress.phase == "main" and elapsed > 0:
        line.append(f"  {sum(counts.values()) / elapsed:6.1f} ops/s", style="dim")
    faults = progress.faults()
    line.append("  faults: ")
    line.append(", ".join(faults) if faults else "none", style="bold red" if faults else "dim")
    return line


class ProgressDisplay:
    """Shows `progress` while a run goes on (a context manager; the display never breaks the run)."""

    def __init__(self, progress: "Progress", stream: IO[str] | None = None) -> None:
        self.progress = progress
        self.console = Console(file=stream or sys.stderr)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def __enter__(self) -> "ProgressDisplay":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        try:
            if self.console.is_terminal:
                self._live_loop()
            else:
                self._plain_loop()
        except Exception as exc:  # a display problem must never end or hide the run, nor print a traceback
            log.warning("progress display failed (%s: %s); the run goes on without it", type(exc).__name__, exc)

    def _line(self, bar: bool) -> Text:
        try:
            line = describe(self.progress, bar=bar)
        except Exception as exc:  # e.g. the nemesis's view changing under us
            line = Text(f"[{self.progress.phase}] ({exc})")
        if bar:  # the live line stays one line, however many faults are active
            line.truncate(max(20, self.console.width - 1), overflow="ellipsis")
        return line

    def _live_loop(self) -> None:
        with Live(self._line(True), console=self.console, refresh_per_second=4, transient=True) as live:
            while not self._stop.wait(0.25):
                live.update(self._line(True))

    def _plain_loop(self) -> None:
        phase, waited = self.progress.phase, 0.0
        while not self._stop.wait(0.25):
            waited += 0.25
            if waited >= PLAIN_EVERY or self.progress.phase != phase:
                phase, waited = self.progress.phase, 0.0
                self.console.print(self._line(False), soft_wrap=True, highlight=False)
