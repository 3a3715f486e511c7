"""The progress line: what it says, and that it keeps quiet about its own problems."""

from __future__ import annotations

import io
import time

from faultbed.progress import ProgressDisplay, describe
from faultbed.runner import Progress


class FakeWorker:
    def __init__(self, ok: int, fail: int, info: int) -> None:
        self.counts = type("Counts", (), {"ok": ok, "fail": fail, "info": info})()


class FakeNemesis:
    def __init__(self, faults: list[str]) -> None:
        self.faults = faults

    def current_faults(self) -> list[str]:
        return self.faults


def main_phase_progress() -> Progress:
    progress = Progress(phase="main", time_limit=10.0, workers=[FakeWorker(30, 2, 1), FakeWorker(20, 0, 0)])
    progress.main_started = time.monotonic() - 5.0
    progress.nemesis = FakeNemesis(["partition (blackhole) random-halves: n1 | n2,n3"])  # type: ignore[assignment]
    return progress


def test_main_phase_line_shows_elapsed_counts_rate_and_active_faults():
    text = describe(main_phase_progress()).plain
    assert "5.0s / 10s" in text
    assert "ok 50" in text and "fail 2" in text and "info 1" in text
    assert "ops/s" in text
    assert "faults: partition (blackhole) random-halves: n1 | n2,n3" in text


def test_other_phases_are_named_and_no_faults_say_none():
    text = describe(Progress(phase="waiting for the cluster")).plain
    assert text.startswith("[waiting for the cluster]")
    assert text.endswith("faults: none")


def test_plain_output_prints_when_the_phase_changes():
    stream = io.StringIO()
    progress = Progress(phase="setup")
    with ProgressDisplay(progress, stream=stream):
        time.sleep(0.1)
        progress.phase = "waiting for the cluster"
        time.sleep(0.6)
    assert "[waiting for the cluster]" in stream.getvalue()


def test_a_broken_progress_source_never_escapes_the_display():
    class Broken(Progress):
        def counts(self):  # type: ignore[override]
            raise RuntimeError("workers list changed size")

    stream = io.StringIO()
    progress = Broken(phase="setup")
    with ProgressDisplay(progress, stream=stream):
        progress.phase = "main"
        time.sleep(0.6)
    assert "workers list changed size" in stream.getvalue()


def test_the_live_line_is_cut_to_the_terminal_width_however_many_faults_are_active():
    progress = main_phase_progress()
    progress.nemesis.faults.extend(["kill n3", "latency 100 ms (+-50) on every link"])  # type: ignore[union-attr]
    display = ProgressDisplay(progress, stream=io.StringIO())
    display.console.width = 80
    line = display._line(bar=True)
    assert len(line.plain) <= 80 and line.plain.endswith("…")
    assert len(display._line(bar=False).plain) > 80  # CI logs get the whole line
