"""What every backend that runs a run's nodes shares, whatever a node is (a process, a container).

The lifecycle shell (entering starts everything; a failure while starting tears down what was
started), node names, plans and logs, each node's fault-injecting disk, waiting for a node's
state, and exits nobody asked for. A backend subclasses NodeBackend and brings `_start`,
`__exit__` and the process verbs; its verbs call `_stopping` before faultbed stops a node,
`_state_noting_exit` for the state it acts on before it starts one again, and `_started` once it runs.

A node found dead that faultbed did not stop exited on its own (a crash of the system under
test, or a fail-stop it chose): `take_exits` hands each such exit over once (node, exit status
when the backend knows it, the end of its log), found when faultbed is about to start the node
again or when asked (`find_exits`, at heal and at the end of a run).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Self

from faultbed.cluster import disk
from faultbed.cluster.backend import DEAD, NodePlan
from faultbed.cluster.registry import RunRecord
from faultbed.cluster.systems import System
from faultbed.errors import SetupError
from faultbed.spec import TestSpec

if TYPE_CHECKING:
    from faultbed.cluster.mesh import Mesh


def node_names(count: int) -> list[str]:
    return [f"n{i}" for i in range(1, count + 1)]


class NodeBackend:
    """The members LocalBackend and DockerBackend have in common."""

    name: str
    STATE_POLL = 0.01  # seconds between looks at a node's state

    def __init__(self, system: System, spec: TestSpec, run_dir: str, run_id: str) -> None:
        self.system = system
        self.spec = spec
        self.run_dir = os.path.abspath(run_dir)
        self.run_id = run_id
        self.nodes = node_names(spec.nodes)
        self.mesh: Mesh
        self.leftovers: list[str] = []  # what teardown could not stop
        self._record = RunRecord(run_id, self.run_dir)
        self._plans: dict[str, NodePlan] = {}
        self._disks: dict[str, disk.DiskMount] = {}
        self._down: set[str] = set(self.nodes)  # not started yet, or stopped by faultbed
        self._exits: list[dict[str, Any]] = []
        self._exits_lock = threading.Lock()
        os.makedirs(os.path.join(self.run_dir, "nodes"), exist_ok=True)

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    # -- nodes ---------------------------------------------------------------------------
    def node_names(self) -> list[str]:
        return list(self.nodes)

    def plan(self, node: str) -> NodePlan:
        return self._plans[node]

    def data_dir(self, node: str) -> str:
        """Where the node reads and writes its data (the mount, when there is one; the same path
        inside and outside a container)."""
        return self._plans[node].data_dir

    def log_path(self, node: str) -> str:
        return os.path.join(self.run_dir, "nodes", f"{node}.log")

    def kill(self, node: str) -> None:
        raise NotImplementedError

    def state(self, node: str) -> str:
        raise NotImplementedError

    def _wait_state(self, node: str, wanted: str, timeout: float = 2.0) -> None:
        self._wait_until(lambda: self.state(node) == wanted, f"{node} did not become {wanted}", timeout)

    def _wait_until(self, done: Callable[[], bool], failure: str, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise SetupError(f"{failure} within {timeout}s")
            time.sleep(self.STATE_POLL)

    # -- exits nobody asked for -----------------------------------------------------------
    def _stopping(self, node: str) -> None:
        """faultbed is about to stop `node` (kill, restart, power loss): its death is no news."""
        self._down.add(node)

    def _started(self, node: str) -> None:
        self._down.discard(node)

    def _state_noting_exit(self, node: str) -> str:
        """The node's state, looked at once; a dead node nobody stopped is noted as an exit (once).
        Called before faultbed starts a node again, which then acts on the state returned."""
        with self._exits_lock:
            state = self.state(node)
            if state == DEAD and node not in self._down:
                self._down.add(node)
                self._exits.append({"node": node, "status": self.exit_status(node), "log": self._log_tail(node)})
        return state

    def exit_status(self, node: str) -> int | None:
        """The exit status of the node's last process, when the backend knows it."""
        return None

    def find_exits(self) -> list[dict[str, Any]]:
        """Look at every node now; every exit nobody asked for since the last call (each once)."""
        for node in self.nodes:
            self._state_noting_exit(node)
        return self.take_exits()

    def take_exits(self) -> list[dict[str, Any]]:
        with self._exits_lock:
            exits, self._exits = self._exits, []
        return exits

    def _log_tail(self, node: str, lines: int = 8, limit: int = 4096) -> list[str]:
        try:
            with open(self.log_path(node), "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - limit))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [line[:300] for line in text.splitlines()[-lines:]]

    # -- disks ---------------------------------------------------------------------------
    def power_loss(self, node: str) -> None:
        """Kill the node, then its disk forgets every write it did not fsync; restart() brings it back
        (a container binds the fresh mount)."""
        mount = self._disks.get(node)
        if mount is None:
            raise SetupError(f"{node} has no fault-injecting filesystem (power-loss needs faultbed-diskfs)")
        self.kill(node)
        mount.power_loss()

    def disk_faults(self, node: str, fsync_error: bool | None = None, delay_ms: int | None = None) -> None:
        """Make the node's disk fail fsync with EIO, or slow every write and fsync (None: unchanged)."""
        mount = self._disks.get(node)
        if mount is None:
            raise SetupError(f"{node} has no fault-injecting filesystem")
        mount.set_faults(fsync_error, delay_ms)

    def _mount_disk(self, node: str) -> str:
        """faultbed-diskfs over data/<node> (the disk), mounted at mnt/<node> (where the node works)."""
        mount = disk.DiskMount(node, os.path.join(self.run_dir, "data", node), os.path.join(self.run_dir, "mnt", node),
                               record=self._record, run_id=self.run_id, log_path=self.log_path(f"diskfs-{node}"),
                               writeback=float(self.spec.options.get("diskfs_writeback", 0)))
        self._disks[node] = mount
        mount.__enter__()
        return mount.mountpoint
