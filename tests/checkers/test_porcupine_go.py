"""The porcupine bindings' own Go tests (checkers/porcupine/*_test.go), gofmt and go vet, run by the suite:
what only Go can reach (the library's warm-up, the reader's block pool) is tested where CI sees it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.maelstrom_subjects.go_node import go_toolchain as _go

PACKAGE = Path(__file__).resolve().parents[2] / "checkers" / "porcupine"


def test_go_tests_pass() -> None:
    # with the race detector: the reader's goroutines hand blocks to each other, and a race there once
    # lost the end of a file (jsonl_parallel.go; warm_test.go TestAFileReadBesideTheWarmUpIsReadWhole)
    done = subprocess.run([_go(), "test", "-count=1", "-race", "."], cwd=PACKAGE, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_go_code_is_formatted_and_vetted() -> None:
    gofmt = Path(_go()).with_name("gofmt")
    unformatted = subprocess.run([str(gofmt) if gofmt.exists() else "gofmt", "-l", "."], cwd=PACKAGE,
                                 capture_output=True, text=True, timeout=120)
    assert unformatted.returncode == 0 and not unformatted.stdout.strip(), unformatted.stdout + unformatted.stderr
    vet = subprocess.run([_go(), "vet", "."], cwd=PACKAGE, capture_output=True, text=True, timeout=600)
    assert vet.returncode == 0, vet.stdout + vet.stderr
