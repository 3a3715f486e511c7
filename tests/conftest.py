"""Fixtures shared across the test suite."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from faultbed.cluster.ports import PortReservation
from faultbed.cluster.registry import every_thread_stopped
from faultbed.cluster.toxiproxy import ToxiproxyServer
from tests.nemesis.echo_cluster import EchoMesh, echo_mesh


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    """A real Toxiproxy server on loopback for the module's tests (a missing binary fails them)."""
    log_path = str(tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log")
    with PortReservation("127.0.0.1") as reservation:
        with ToxiproxyServer("127.0.0.1", reservation.take()[0], log_path) as running:
            yield running


@pytest.fixture
def net(server: ToxiproxyServer) -> Iterator[EchoMesh]:
    """Three TCP echo "nodes" meshed through `server`."""
    with echo_mesh(server, ("n1", "n2", "n3")) as mesh:
        yield mesh


def wait_until_stopped(pid: int, timeout: float = 5.0) -> None:
    """Until every thread of `pid` is stopped: a SIGSTOP reaches each thread in its own time, and a thread
    not yet stopped may still answer (once in CI a call to a just-stopped Toxiproxy was answered)."""
    deadline = time.monotonic() + timeout
    while not every_thread_stopped(pid):
        assert time.monotonic() < deadline, f"pid {pid} not stopped in every thread {timeout:.0f} s after SIGSTOP"
        time.sleep(0.001)
