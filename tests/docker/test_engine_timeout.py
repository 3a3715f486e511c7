"""A Docker engine that does not answer in time while a cluster starts is a setup failure (exit 3),
not a bug of faultbed (255): one line that names it, and nothing of the run left in Docker.

The slow engine is the real one behind a relay on a unix socket that holds every container
start request (`POST /containers/<id>/start`) unanswered; everything else passes through. The
relay is the only stand-in: a real engine cannot be made this slow on demand without stopping it
for everyone on the machine.
"""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from faultbed.cluster.docker import DockerBackend
from faultbed.errors import SetupError
from faultbed.spec import TestSpec
from tests.docker.conftest import new_run_id, remove_run, resources_of_run
from tests.docker.whoami import SYSTEM

pytestmark = pytest.mark.docker

ENGINE = "/var/run/docker.sock"
START = re.compile(rb"POST /v[\d.]+/containers/[^/ ]+/start")


class SlowEngine:
    """A unix socket in front of the engine that never forwards a container start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        self._closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(ENGINE)
            threading.Thread(target=self._carry, args=(client, engine, True), daemon=True).start()
            threading.Thread(target=self._carry, args=(engine, client, False), daemon=True).start()

    def _carry(self, source: socket.socket, dest: socket.socket, to_engine: bool) -> None:
        try:
            while data := source.recv(65536):
                if to_engine and START.search(data):
                    self.held.set()
                    self._closing.wait()  # held: the engine never hears of it
                    return
                dest.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closing.set()
        self._server.close()


@pytest.fixture
def slow_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowEngine]:
    if not Path(ENGINE).exists():
        raise AssertionError(f"this test needs the Docker engine's socket at {ENGINE}")
    engine = SlowEngine(tmp_path / "docker.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.path}")
    monkeypatch.setenv("FAULTBED_DOCKER_TIMEOUT", "3")
    try:
        yield engine
    finally:
        engine.close()


def test_an_engine_that_does_not_answer_a_start_in_time_is_a_setup_error_and_nothing_is_left(tmp_path, slow_engine):
    run_id = new_run_id()
    backend = DockerBackend(SYSTEM, TestSpec(nodes=2, backend="docker"), str(tmp_path / "run"), run_id)
    try:
        with pytest.raises(SetupError) as raised:
            backend.__enter__()
        assert slow_engine.held.is_set(), "a container start reached the relay"
        message = str(raised.value)
        assert "\n" not in message and "the engine failed while starting the cluster" in message, message
        assert "Timeout" in message and "FAULTBED_DOCKER_TIMEOUT (now 3 s)" in message, message
        assert resources_of_run(run_id) == [], "the teardown after the failed start removed everything"
    finally:
        remove_run(run_id)


@pytest.mark.parametrize("value", ["0", "abc", "nan", "99999"])
def test_a_bad_docker_timeout_is_one_line(monkeypatch, value):
    from faultbed.cluster.docker.engine import docker_client

    monkeypatch.setenv("FAULTBED_DOCKER_TIMEOUT", value)
    with pytest.raises(SetupError, match="FAULTBED_DOCKER_TIMEOUT=.*from 1 to 3600"):
        docker_client()
