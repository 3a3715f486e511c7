"""Fixtures for system tests: raftkv clusters of real processes, always killed at teardown."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterator, TypeVar

import pytest

from faultbed.cluster.systems.raftkv.direct import DirectCluster

T = TypeVar("T")
StartCluster = Callable[..., DirectCluster]


@pytest.fixture
def start_raftkv(tmp_path: Any) -> Iterator[StartCluster]:
    """Start a raftkv cluster (count, bugs, options) that is killed when the test ends."""
    clusters: list[DirectCluster] = []

    def start(count: int = 3, bugs: tuple[str, ...] = (), options: dict[str, Any] | None = None) -> DirectCluster:
        cluster = DirectCluster(str(tmp_path / f"cluster{len(clusters)}"), count, bugs, options, sys.executable)
        clusters.append(cluster)
        cluster.__enter__()
        return cluster

    yield start
    for cluster in clusters:
        cluster.close()


def eventually(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """The first truthy value `probe` returns before `timeout` seconds; fails naming `what`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
