"""Fixtures of the test-subject tests: the Go node binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.maelstrom_subjects.go_node import build_go_node


@pytest.fixture(scope="session")
def go_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go_node(tmp_path_factory.mktemp("go-node"))
