"""Cleanup: a run's containers and networks removed by their labels (teardown), and `faultbed gc`
removing those of runs whose harness is gone."""

from __future__ import annotations

import logging
from typing import Any, Callable, Collection

import docker.errors
import requests.exceptions  # type: ignore[import]  # Debian ships no stubs
from docker.client import DockerClient

from faultbed.cluster.docker.engine import LABEL_HARNESS, LABEL_RUN, docker_client, parallel
from faultbed.cluster.registry import is_alive
from faultbed.errors import SetupError

log = logging.getLogger(__name__)


def remove_run_resources(client: DockerClient, doomed: Callable[[dict[str, str]], bool],
                         run_id: str | None = None) -> list[str]:
    """Remove faultbed containers, then networks (of `run_id`, or of any run) that `doomed` picks by labels.

    Returns their names. Uses the plain listings: other runs may remove their own meanwhile.
    """
    label = f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN
    containers = [c for c in client.api.containers(all=True, filters={"label": label})
                  if doomed(c.get("Labels") or {})]
    removed = parallel(lambda c: _remove(f"container {c['Names'][0].lstrip('/')}", client.api.remove_container,
                                          c["Id"], force=True, v=True), containers)
    networks = [n for n in client.api.networks(filters={"label": label}) if doomed(n.get("Labels") or {})]
    removed += parallel(lambda n: _remove(f"network {n['Name']}", client.api.remove_network, n["Id"]), networks)
    return [name for name in removed if name]


def gc_docker(include_live: bool = False, live_run_ids: Collection[str] | None = None) -> int:
    """Remove faultbed containers and networks of runs that are not alive; how many it removed.

    A run is alive while the harness named by its `faultbed.harness` label (pid and start
    time) runs, or, given `live_run_ids`, when its id is in them; `include_live` removes
    every run's. Without a reachable Docker engine there is nothing to remove: 0.
    """
    try:
        client = docker_client()
    except SetupError as exc:
        log.debug("docker gc skipped: %s", exc)
        return 0
    try:
        removed = remove_run_resources(
            client, lambda labels: include_live or not alive(labels, live_run_ids))
    finally:
        client.close()
    for name in removed:
        log.info("docker gc: removed %s", name)
    return len(removed)


def alive(labels: dict[str, str], live_run_ids: Collection[str] | None) -> bool:
    if live_run_ids is not None:
        return labels.get(LABEL_RUN) in live_run_ids
    pid, _, start = labels.get(LABEL_HARNESS, "").partition(":")
    if not pid.isdigit():
        return False
    return is_alive(int(pid), int(start) if start.isdigit() else None)


def _remove(what: str, remove: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """Call `remove`; `what` when it is gone (also when it was gone already), None when Docker refused (logged)."""
    try:
        remove(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.DockerException as exc:
        log.warning("docker: cannot remove %s: %s", what, exc)
        return None
    except requests.exceptions.RequestException as exc:  # e.g. a busy engine's answer took too long
        log.warning("docker: cannot remove %s: the engine did not answer (%s)", what, type(exc).__name__)
        return None
    return what
