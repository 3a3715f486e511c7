"""The Docker engine as the backend uses it: one client, the labels every resource carries, and the
small calls shared by the rooms of this package (409s ignored, API calls in threads)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

import docker.errors
import requests.exceptions  # type: ignore[import]  # Debian ships no stubs
from docker.client import DockerClient  # (not `docker.DockerClient`: mypy may take ./docker for the package)

from faultbed.errors import SetupError

LABEL_RUN = "faultbed.run"
LABEL_HARNESS = "faultbed.harness"
LABEL_ROLE = "faultbed.role"
API_TIMEOUT = 60.0  # seconds an answer of the engine may take; FAULTBED_DOCKER_TIMEOUT overrides it
TIMEOUT_ENV = "FAULTBED_DOCKER_TIMEOUT"
PARALLEL = 8

T = TypeVar("T")


def api_timeout() -> float:
    """How long an answer of the engine may take: FAULTBED_DOCKER_TIMEOUT seconds, or API_TIMEOUT."""
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return API_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 1 <= seconds <= 3600:
        raise SetupError(f"{TIMEOUT_ENV}={text!r}: give a number of seconds from 1 to 3600")
    return seconds


def docker_client(timeout: float | None = None) -> DockerClient:
    """A client of the Docker engine (DOCKER_HOST or the local socket) that answers, or SetupError."""
    try:
        client = DockerClient.from_env(timeout=int(timeout if timeout is not None else api_timeout()))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SetupError(f"cannot reach the Docker engine: {exc}") from exc
    return client


def engine_trouble(exc: BaseException) -> bool:
    """The engine, not faultbed, failed a call: no answer in time, a broken connection, a 5xx."""
    if isinstance(exc, requests.exceptions.RequestException):
        return True
    return isinstance(exc, docker.errors.APIError) and bool(exc.is_server_error())


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
