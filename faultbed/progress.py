"""The live progress line of `faultbed run`: elapsed of limit, ok/fail/info, active faults (rich)."""

from __future__ import annotations

import sys
import threading
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from faultbed.runner import Progress

PLAIN_EVERY = 5.0


def describe(progress: Progress) -> Text:
    counts = progress.counts()
    line = Text()
    if progress.phase == "main":
        line.append(f"{progress.elapsed():5.1f}s / {progress.time_limit:.0f}s  ", style="bold")
    else:
        line.append(f"[{progress.phase}]  ", style="bold cyan")
    line.append(f"ok {counts['ok']}", style="green")
    line.append("  ")
    line.append(f"fail {counts['fail']}", style="yellow")
    line.append("  ")
    line.append(f"info {counts['info']}", style="magenta")
    faults = progress.faults()
    line.append("  faults: ")
    line.append(", ".join(faults) if faults else "none", style="red" if faults else "dim")
    return line


class ProgressDisplay:
    """Redraws the progress line while a run goes on; a plain line every few seconds when not a tty."""

    def __init__(self, progress: Progress, stream: IO[str] | None = None) -> None:
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
        if self.console.is_terminal:
            with Live(describe(self.progress), console=self.console, refresh_per_second=4,
                      transient=True) as live:
                while not self._stop.wait(0.25):
                    live.update(describe(self.progress))
        else:
            while not self._stop.wait(PLAIN_EVERY):
                self.console.print(describe(self.progress), soft_wrap=True)
