"""Fixtures shared across the test suite."""

from __future__ import annotations

from typing import Iterator

import pytest

from faultbed.cluster.ports import PortReservation
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
