"""The Docker engine as the backend uses it: one client, the labels every resource carries, and the
small calls shared by the rooms of this package (409s ignored, API calls in threads)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

import docker.errors
from docker.client import DockerClient  # (not `docker.DockerClient`: mypy may take ./docker for the package)

from faultbed.errors import SetupError

LABEL_RUN = "faultbed.run"
LABEL_HARNESS = "faultbed.harness"
LABEL_ROLE = "faultbed.role"
API_TIMEOUT = 60.0
PARALLEL = 8

T = TypeVar("T")


def docker_client(timeout: float = API_TIMEOUT) -> DockerClient:
    """A client of the Docker engine (DOCKER_HOST or the local socket) that answers, or SetupError."""
    try:
        client = DockerClient.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise SetupError(f"cannot reach the Docker engine: {exc}") from exc
    return client


def ignore_conflict(call: Callable[..., Any], *args: Any) -> None:
    """Docker answers 409 when a container stopped on its own in between: that is fine here."""
    try:
        call(*args)
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise


def parallel(function: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
    """`function` over `items` in threads (Docker API calls are mostly waiting); results in order."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        return list(pool.map(function, items))
