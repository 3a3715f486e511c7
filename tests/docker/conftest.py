"""Fixtures for Docker backend tests: a whoami cluster in containers, and what a run left in Docker.

These tests need the Docker engine and the images of `make images`; without them they
fail (the backend raises SetupError), they do not skip.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Iterator

from docker.client import DockerClient
import pytest

from faultbed.cluster.docker import LABEL_HARNESS, LABEL_RUN, DockerBackend, remove_run_resources
from faultbed.cluster.registry import process_start_time
from faultbed.spec import TestSpec
from tests.docker.whoami import DIAL, SYSTEM, ask_name

DIAL_TIMEOUT = 1.5


def new_run_id() -> str:
    return "test-" + uuid.uuid4().hex[:10]


def wait_until_answering(backend: DockerBackend, nodes: list[str] | None = None, timeout: float = 20.0) -> None:
    """Until each node's client port answers with the node's own name."""
    deadline = time.monotonic() + timeout
    for node in nodes or backend.node_names():
        while True:
            try:
                if ask_name(backend.client_address(node), timeout=1.0) == node:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{node} did not answer on {backend.client_address(node)} within {timeout}s")
            time.sleep(0.05)


def dial_from(backend: DockerBackend, node: str, host: str, port: int, timeout: float = DIAL_TIMEOUT) -> str:
    """From inside `node`'s container, connect to host:port: the name that answers, or the error's type."""
    code, output = backend.container(node).exec_run(["python3", "-c", DIAL, host, str(port), str(timeout)])
    assert code == 0, output
    return str(output.decode().strip())


def resources_of_run(run_id: str) -> list[str]:
    """Every container and network Docker still has for `run_id`."""
    client = DockerClient.from_env(timeout=30)
    try:
        label = {"label": f"{LABEL_RUN}={run_id}"}
        return ([f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
                + [f"network {n.name}" for n in client.networks.list(filters=label)])
    finally:
        client.close()


def remove_run(run_id: str) -> None:
    """Remove whatever Docker still has of `run_id` (cleanup after a test that simulates a crash)."""
    client = DockerClient.from_env(timeout=30)
    try:
        remove_run_resources(client, lambda labels: True, run_id)
    finally:
        client.close()


def own_labels() -> dict[str, str]:
    """Labels that mark a container as this test process's (so a concurrent gc spares it)."""
    pid = os.getpid()
    return {LABEL_RUN: new_run_id(), LABEL_HARNESS: f"{pid}:{process_start_time(pid)}"}


def start_whoami(tmp_path: Path, nodes: int) -> DockerBackend:
    backend = DockerBackend(SYSTEM, TestSpec(nodes=nodes, backend="docker"), str(tmp_path), new_run_id())
    backend.__enter__()
    try:
        wait_until_answering(backend)
    except BaseException:
        backend.__exit__(None, None, None)
        raise
    return backend


@pytest.fixture(scope="module")
def whoami3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerBackend]:
    """Three whoami nodes in containers, shared by a module's tests (each leaves them running)."""
    backend = start_whoami(tmp_path_factory.mktemp("whoami3"), 3)
    try:
        yield backend
    finally:
        backend.__exit__(None, None, None)


@pytest.fixture
def whoami2(tmp_path: Path) -> Iterator[DockerBackend]:
    """Two whoami nodes of the test's own."""
    backend = start_whoami(tmp_path, 2)
    try:
        yield backend
    finally:
        backend.__exit__(None, None, None)
