"""The Go test-subject node, built with `go build` into a temporary directory (once per test session)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.maelstrom_subjects.stdio import NODES_DIR

GO_SOURCE = NODES_DIR / "go"
BUILD_SECONDS = 300


def go_toolchain() -> str:
    """The `go` binary, on PATH or where Go's installer puts it; a missing toolchain fails the test loudly
    (it is never skipped)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if go is None:
        pytest.fail("the Go toolchain (go) is not installed: scripts/setup installs it")
    return go


def build_go_node(into: Path) -> Path:
    """`go build` the node into `into`; a missing Go toolchain fails loudly (it is never skipped)."""
    go = go_toolchain()
    binary = into / "maelstrom-go-node"
    env = dict(os.environ, CGO_ENABLED="0")
    built = subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_SOURCE, env=env, capture_output=True,
                           text=True, timeout=BUILD_SECONDS)
    if built.returncode != 0:
        pytest.fail(f"go build of {GO_SOURCE} failed: {built.stderr[-2000:]}")
    return binary
