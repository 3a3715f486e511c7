"""Starting a cluster, one way for everyone: the runner and the pytest plugin.

`start_cluster` enters the backend (Toxiproxy, mesh, every node), wraps it as a
RunningCluster and waits until it is ready; leaving it stops everything the backend
started, also after an error or Ctrl-C. A node that exits during startup is named,
with the last line of its log.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from faultbed.cluster.backend import DEAD, Backend
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import System
from faultbed.errors import SetupError


@contextlib.contextmanager
def start_cluster(system: System, backend: Backend, bugs: tuple[str, ...], ready_timeout: float,
                  waiting: Callable[[], None] = lambda: None,
                  options: dict[str, Any] | None = None) -> Iterator[RunningCluster]:
    """`backend` (constructed, not entered) started, and its cluster ready; `waiting()` is
    called once the nodes are started, before the wait for readiness. `options`: the spec's."""
    with backend:
        cluster = RunningCluster(system, backend, backend.mesh, bugs, options)
        waiting()
        wait_ready(cluster, ready_timeout)
        yield cluster


def wait_ready(cluster: RunningCluster, timeout: float) -> None:
    """Every node answers and names the same leader, or SetupError naming a node that exited."""
    try:
        cluster.wait_ready(timeout, nodes=cluster.nodes)
    except SetupError as exc:
        dead = [n for n in cluster.nodes if cluster.backend.state(n) == DEAD]
        if dead:
            tail = log_tail(cluster.backend.log_path(dead[0]))
            raise SetupError(f"node(s) {', '.join(dead)} exited during startup; "
                             f"{dead[0]}'s log ends: {tail}") from exc
        raise


def log_tail(path: str) -> str:
    """The last line of a node's log (or what is wrong with it)."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"
