"""The local backend: every node a process on 127.0.0.1, every link through Toxiproxy.

Each node has a stable identity (`n1`..`nN` and its own ports); it reaches a peer
only through the proxy of the directed pair, whose address it is given as that
peer's dial address. Ports are reserved below 32768 (cluster/ports.py) so that
parallel runs never collide. Every process carries FAULTBED_RUN=<run id> and is
written into the run record, so `faultbed gc` can remove what a crash left.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import IO

from faultbed.cluster import disk
from faultbed.cluster.backend import DEAD, PAUSED, RUNNING, Link, NodePlan
from faultbed.cluster.mesh import Mesh
from faultbed.cluster.nodes import NodeBackend
from faultbed.cluster.ports import PortReservation
from faultbed.cluster.registry import every_thread_stopped, process_state, run_env
from faultbed.cluster.systems import System
from faultbed.cluster.toxiproxy import ToxiproxyClient, ToxiproxyServer
from faultbed.errors import SetupError
from faultbed.interrupts import deferred_interrupts
from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
STOP_GRACE = 3.0


class LocalBackend(NodeBackend):
    """Nodes as processes on loopback; a context manager that stops everything it started."""

    name = "local"

    def __init__(self, system: System, spec: TestSpec, run_dir: str, run_id: str) -> None:
        super().__init__(system, spec, run_dir, run_id)
        self._ports = PortReservation(HOST)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._toxiproxy: ToxiproxyServer | None = None

    # -- lifecycle ---------------------------------------------------------
    def _start(self) -> None:
        node_ports = {n: dict(zip(self.system.ports, self._ports.take(len(self.system.ports))))
                      for n in self.nodes}
        links = [
            Link(src, dst, port, listen=f"{HOST}:{self._ports.take()[0]}",
                 upstream=f"{HOST}:{node_ports[dst][port]}")
            for src in self.nodes for dst in self.nodes if src != dst for port in self.system.peer_ports
        ]
        api_port = self._ports.take()[0]
        self._toxiproxy = ToxiproxyServer(
            host=HOST, port=api_port, log_path=os.path.join(self.run_dir, "nodes", "toxiproxy.log"),
            env=run_env(self.run_id))
        self._toxiproxy.__enter__()
        assert self._toxiproxy.pid is not None
        self._record.add_process("toxiproxy", self._toxiproxy.pid)
        self.mesh = Mesh(self._toxiproxy.client, links, restart_server=self._restart_toxiproxy)
        self.mesh.create()
        identity_port = self.system.peer_ports[0] if self.system.peer_ports else self.system.client_port
        identities = {n: f"{HOST}:{node_ports[n][identity_port]}" for n in self.nodes}
        with_disk = disk.wanted(self.spec.nemesis, self.spec.options)
        for node in self.nodes:
            data_dir = self._mount_disk(node) if with_disk else os.path.join(self.run_dir, "data", node)
            dial: dict[str, dict[str, str]] = {link.dst: {} for link in links if link.src == node}
            for link in links:
                if link.src == node:
                    dial[link.dst][link.port] = link.listen
            self._plans[node] = NodePlan(
                name=node, nodes=tuple(self.nodes), listen_host=HOST, ports=node_ports[node],
                identities=identities, dial=dial, data_dir=data_dir,
                python=sys.executable, bugs=self.spec.bugs, options=dict(self.spec.options))
            os.makedirs(self._plans[node].data_dir, exist_ok=True)
        for node in self.nodes:
            self._spawn(node)

    def __exit__(self, *exc: object) -> None:
        with deferred_interrupts():  # a Ctrl-C or SIGTERM now is noted, acted on once all is stopped
            self._teardown()

    def _teardown(self) -> None:
        """Stop every node and Toxiproxy; what cannot be stopped is named in `leftovers` and stays
        in the run record, so `faultbed gc` finds it."""
        failed: list[str] = []
        for node in list(self._procs):
            try:
                self._stop_process(node)
            except Exception as exc:  # one stubborn node must not keep the others running
                failed.append(f"{node} (pid {self._procs[node].pid}): {exc}")
        for mount in self._disks.values():
            try:
                mount.unmount()
            except Exception as exc:
                failed.append(f"disk mount {mount.mountpoint}: {exc}")
        if self._toxiproxy is not None:
            try:
                self._toxiproxy.__exit__(None, None, None)
            except Exception as exc:
                failed.append(f"toxiproxy (pid {self._toxiproxy.pid}): {exc}")
            self._toxiproxy = None
        for fh in self._logs.values():
            fh.close()
        self._logs.clear()
        self._ports.release()
        self.leftovers = failed
        if failed:
            log.error("could not stop: %s; `faultbed gc` removes them", "; ".join(failed))
        else:
            self._record.remove()

    # -- Backend protocol ----------------------------------------------------
    def client_address(self, node: str) -> tuple[str, int]:
        return HOST, self._plans[node].ports[self.system.client_port]

    def pid(self, node: str) -> int | None:
        proc = self._procs.get(node)
        return proc.pid if proc is not None and proc.poll() is None else None

    def kill(self, node: str) -> None:
        """SIGKILL: no chance to flush or say goodbye."""
        proc = self._procs.get(node)
        self._stopping(node)
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=STOP_GRACE)
        log.info("killed %s", node)

    def pause(self, node: str) -> None:
        """SIGSTOP, and back once every thread of the node is stopped (none of them answers any more)."""
        self._signal(node, signal.SIGSTOP)
        self._wait_state(node, PAUSED)
        proc = self._procs[node]
        self._wait_until(lambda: every_thread_stopped(proc.pid), f"{node} did not stop in every thread")

    def resume(self, node: str) -> None:
        self._signal(node, signal.SIGCONT)
        self._wait_state(node, RUNNING)

    def restart(self, node: str) -> None:
        """Start the node again with the same data directory (stopping it first if it runs)."""
        if self._state_noting_exit(node) != DEAD:
            self._stopping(node)
            self._stop_process(node)
        self._spawn(node)

    def start(self, node: str) -> None:
        if self._state_noting_exit(node) == DEAD:
            self._spawn(node)

    def exit_status(self, node: str) -> int | None:
        proc = self._procs.get(node)
        return proc.poll() if proc is not None else None

    def state(self, node: str) -> str:
        proc = self._procs.get(node)
        if proc is None or proc.poll() is not None:
            return DEAD
        status = process_state(proc.pid)
        if status is None:
            return DEAD
        return PAUSED if status in ("T", "t") else RUNNING

    @property
    def toxiproxy_pid(self) -> int | None:
        """The pid of this run's Toxiproxy server (it changes when the mesh restarts it)."""
        return self._toxiproxy.pid if self._toxiproxy is not None else None

    # -- internals -----------------------------------------------------------
    def _restart_toxiproxy(self) -> ToxiproxyClient:
        """A new Toxiproxy server on the same port (the mesh re-creates the proxies)."""
        assert self._toxiproxy is not None
        self._toxiproxy.restart()
        assert self._toxiproxy.pid is not None
        self._record.add_process("toxiproxy", self._toxiproxy.pid)
        return self._toxiproxy.client

    def _spawn(self, node: str) -> None:
        plan = self._plans[node]
        command = self.system.command(plan)
        if not os.path.exists(command[0]) and "/" in command[0]:
            raise SetupError(f"{self.system.name}: binary not found: {command[0]}")
        logfile = self._logs.get(node)
        if logfile is None:
            logfile = self._logs[node] = open(self.log_path(node), "ab")
        env = dict(os.environ, **run_env(self.run_id))
        try:
            proc = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=plan.data_dir, start_new_session=True)
        except OSError as exc:
            raise SetupError(f"{self.system.name}: cannot start {node} ({command[0]}): {exc.strerror}") from exc
        self._procs[node] = proc
        self._started(node)
        self._record.add_process(node, proc.pid)
        log.info("started %s pid %d", node, proc.pid)

    def _stop_process(self, node: str) -> None:
        proc = self._procs.get(node)
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            proc.terminate()
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_GRACE)

    def _signal(self, node: str, sig: signal.Signals) -> None:
        proc = self._procs.get(node)
        if proc is None or proc.poll() is not None:
            raise SetupError(f"{node} is not running")
        _signal_group(proc, sig)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """`sig` to the node's whole process group (its own session): a node that runs a child, as a
    Maelstrom router runs the user's program, is paused and killed as one."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
