"""A running cluster as the runner and the nemesis see it: system + backend + mesh.

The nemesis acts through `mesh` (network faults) and `backend` (process faults);
clients come from `client()`. Readiness is waited for, never slept for.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from faultbed.cluster.backend import DEAD, RUNNING, Backend
from faultbed.cluster.systems import Client, System, chosen_options
from faultbed.errors import SetupError

if TYPE_CHECKING:
    from faultbed.cluster.mesh import Mesh

log = logging.getLogger(__name__)


class RunningCluster:
    """Handles to a started cluster; it owns nothing (the backend does)."""

    def __init__(self, system: System, backend: Backend, mesh: "Mesh", bugs: tuple[str, ...] = (),
                 options: dict[str, Any] | None = None) -> None:
        self.system = system
        self.bugs = tuple(bugs)
        # the system's own options (SystemOption), given to its clients only if it declares any
        self.system_options = chosen_options(system, options or {})
        self.backend = backend
        self.mesh = mesh
        self.nodes: list[str] = backend.node_names()

    def client(self, node: str, timeout: float = 2.0) -> Client:
        """A new client connected to `node`'s client port."""
        address = self.backend.client_address(node)
        if self.system_options:
            return self.system.open_client(address, node, timeout, self.bugs,  # type: ignore[call-arg]
                                           options=self.system_options)
        return self.system.open_client(address, node, timeout, self.bugs)

    def statuses(self, timeout: float = 1.0) -> dict[str, dict[str, Any]]:
        """Each running node's own status (at least `leader`); nodes that do not answer are left out."""
        result: dict[str, dict[str, Any]] = {}
        for node in self.nodes:
            if self.backend.state(node) != RUNNING:
                continue
            try:
                client = self.client(node, timeout)
            except OSError:
                continue
            try:
                result[node] = client.status(timeout)
            except (OSError, ValueError):
                continue
            finally:
                client.close()
        return result

    def leader(self, timeout: float = 1.0) -> str | None:
        """The node most running nodes name as leader, or None when they name none."""
        votes: dict[str, int] = {}
        for status in self.statuses(timeout).values():
            leader = status.get("leader")
            if leader:
                votes[leader] = votes.get(leader, 0) + 1
        return max(votes, key=lambda n: votes[n]) if votes else None

    def wait_ready(self, timeout: float, nodes: list[str] | None = None) -> str | None:
        """Wait until every running node answers and all name the same leader; returns it.

        With `nodes`, each of them is required: one that has exited fails at once. A system
        whose statuses carry no `leader` key names none (a system file without [leader]):
        it is ready when every node answers, and the result is None.
        """
        wanted = list(nodes) if nodes is not None else [n for n in self.nodes if self.backend.state(n) == RUNNING]
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            dead = [n for n in wanted if nodes is not None and self.backend.state(n) == DEAD]
            if dead:
                raise SetupError(f"{', '.join(dead)} exited before the cluster was ready")
            last = self.statuses(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
            leaders = {last[n].get("leader") for n in wanted if n in last}
            if all(n in last for n in wanted) and not any("leader" in last[n] for n in wanted):
                return None
            if all(n in last for n in wanted) and len(leaders) == 1 and None not in leaders:
                leader = leaders.pop()
                assert leader is not None
                return leader
            time.sleep(0.05)
        missing = [n for n in wanted if n not in last]
        seen = {n: s.get("leader") for n, s in last.items()}
        raise SetupError(
            f"cluster not ready after {timeout:.0f}s: "
            + (f"no answer from {', '.join(missing)}; " if missing else "")
            + f"leaders named: {seen}"
        )
