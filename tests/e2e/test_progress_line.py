"""The live progress line of a default `faultbed run` (no --quiet) on a terminal, as a user sees it."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def read_terminal(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> str:
    """Everything written to the terminal until the process exits (escape codes removed)."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def test_a_default_run_on_a_terminal_redraws_elapsed_counts_and_faults_then_prints_the_verdict(tmp_path):
    main, child = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="160", LINES="40")
    proc = subprocess.Popen([sys.executable, "-m", "faultbed", "run", "--nodes", "3", "--time-limit", "6",
                             "--rate", "50", "--concurrency", "4", "--nemesis", "partition", "--nemesis-interval",
                             "1.5", "--seed", "3", "--store", str(tmp_path / "store")],
                            cwd=ROOT, stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    try:
        screen = read_terminal(main, proc, timeout=180)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    assert proc.returncode == 0, screen
    elapsed = {float(m) for m in re.findall(r"(\d+\.\d)s / 6s", screen)}
    assert len(elapsed) >= 4 and max(elapsed) >= 4.0, f"the line is redrawn as the run goes on: {sorted(elapsed)}"
    counts = [int(m) for m in re.findall(r"ok (\d+)  fail \d+  info \d+", screen)]
    assert counts and max(counts) > 50 and counts == sorted(counts), "ok counts grow"
    assert re.search(r"ops/s  faults: (none|partition)", screen), screen[-2000:]
    assert "faults: partition" in screen, "an active partition is shown while it lasts"
    assert "[waiting for the cluster]" in screen
    assert screen.index("verdict: valid") > screen.rindex("s / 6s"), "the summary follows the live line"
