"""A raftkv cluster of local processes without the mesh: peers dial each other directly.

For tests and benchmarks of the system alone (the runner uses a Backend and the
Toxiproxy mesh instead). Nodes are started from `SYSTEM.command(plan)`, so the real
command line is what runs. A context manager: every process it started is killed on exit.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import IO, Any

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.ports import PortReservation
from faultbed.cluster.registry import every_thread_stopped
from faultbed.cluster.systems.raftkv import SYSTEM
from faultbed.cluster.systems.raftkv.client import RaftKVClient
from faultbed.errors import SetupError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class DirectCluster:
    """`count` raftkv nodes n1..nN on loopback, data and logs under `work_dir`."""

    def __init__(self, work_dir: str, count: int = 3, bugs: tuple[str, ...] = (),
                 options: dict[str, Any] | None = None, python: str = sys.executable) -> None:
        self.work_dir = work_dir
        self.nodes = [f"n{i}" for i in range(1, count + 1)]
        self._ports = PortReservation(HOST)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        ports = {n: dict(zip(SYSTEM.ports, self._ports.take(len(SYSTEM.ports)))) for n in self.nodes}
        identities = {n: f"{HOST}:{ports[n]['raft']}" for n in self.nodes}
        self.plans = {
            n: NodePlan(
                name=n, nodes=tuple(self.nodes), listen_host=HOST, ports=ports[n], identities=identities,
                dial={p: {"raft": identities[p]} for p in self.nodes if p != n},
                data_dir=os.path.join(work_dir, "data", n), python=python, bugs=tuple(bugs),
                options=dict(options or {}),
            )
            for n in self.nodes
        }

    def __enter__(self) -> "DirectCluster":
        try:
            for node in self.nodes:
                self.start(node)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- processes -------------------------------------------------------------
    def start(self, node: str) -> None:
        """Start (or restart after kill) `node` with its plan and data directory."""
        if node in self._procs and self._procs[node].poll() is None:
            raise SetupError(f"{node} is already running")
        os.makedirs(os.path.join(self.work_dir, "nodes"), exist_ok=True)
        log_file = self._logs.get(node) or open(self.log_path(node), "ab")
        self._logs[node] = log_file
        env = dict(os.environ, PYTHONPATH=PROJECT_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self._procs[node] = subprocess.Popen(SYSTEM.command(self.plans[node]), stdout=log_file,
                                             stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env,
                                             start_new_session=True)

    def kill(self, node: str, timeout: float = 5.0) -> None:
        """SIGKILL `node` and reap it."""
        proc = self._procs[node]
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout)

    def pause(self, node: str, timeout: float = 5.0) -> None:
        """SIGSTOP `node` and wait until the kernel reports every thread of it stopped (delivery is asynchronous)."""
        proc = self._procs[node]
        proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not every_thread_stopped(proc.pid):
            if time.monotonic() > deadline:
                raise SetupError(f"{node} (pid {proc.pid}) not stopped {timeout:.0f}s after SIGSTOP")
            time.sleep(0.001)

    def resume(self, node: str) -> None:
        self._procs[node].send_signal(signal.SIGCONT)

    def restart(self, node: str) -> None:
        self.kill(node)
        self.start(node)

    def close(self) -> None:
        for node, proc in self._procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                log.error("%s (pid %d) did not die after SIGKILL", node, proc.pid)
        for fh in self._logs.values():
            fh.close()
        self._procs.clear()
        self._logs.clear()
        self._ports.release()

    def log_path(self, node: str) -> str:
        return os.path.join(self.work_dir, "nodes", f"{node}.log")

    # -- clients -----------------------------------------------------------------
    def address(self, node: str) -> tuple[str, int]:
        return HOST, self.plans[node].ports["client"]

    def client(self, node: str, timeout: float = 2.0) -> RaftKVClient:
        return RaftKVClient(self.address(node), node, timeout)

    def status(self, node: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """`node`'s status, or None when it does not answer."""
        try:
            with self.client(node, timeout) as client:
                return client.status(timeout)
        except (OSError, ValueError):
            return None

    def wait_up(self, node: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until `node` answers on its client port; its status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(node, timeout=0.5)
            if status is not None:
                return status
            time.sleep(0.05)
        raise SetupError(f"{node} did not answer on its client port within {timeout:.0f}s (log: {self.log_path(node)})")

    def wait_leader(self, timeout: float = 15.0, nodes: list[str] | None = None) -> str:
        """Wait until every node in `nodes` (default all) answers and names the same leader, who leads."""
        wanted = nodes or self.nodes
        deadline = time.monotonic() + timeout
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen = {n: self.status(n, timeout=0.5) for n in wanted}
            leaders = {s["leader"] if s else None for s in seen.values()}
            if len(leaders) == 1 and None not in leaders:
                leader = leaders.pop()
                if leader in seen and seen[leader] and seen[leader]["state"] == "leader":
                    return str(leader)
            time.sleep(0.05)
        raise SetupError(f"no common leader among {wanted} after {timeout:.0f}s: "
                         f"{ {n: (s or {}).get('leader') for n, s in seen.items()} }")
