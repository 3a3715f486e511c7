"""SSHBackend: each node a process on a host of the inventory, its peer traffic through a Toxiproxy
on its own host.

Addresses. Node ni on host H listens on H's address (from the inventory) on ports of its own,
chosen free on every host of the run. Each host runs one Toxiproxy; the proxy of link ni->nj
(one per peer port) is on ni's host and listens on a loopback address of ni's own,
127.0.1.<i>, on nj's port, and forwards to nj's host address: ni dials nothing else. Node
identities are names (`n2:<port>`), as on docker: raftkv dials its per-peer dial addresses,
and for systems that dial peers by name (etcd), a host that runs exactly one node gets
`127.0.1.<i> nj` for every peer and its own address for ni in a marked block of /etc/hosts.

Control. One shared ssh connection per host (connection.py); the agent (agent.py) starts every
process in its own session and records pid and start time in <workdir>/<run id>/processes.jsonl
on that host; kill, pause, resume and restart signal that pid only. Toxiproxy's API listens on
the host's loopback and is reached through a port forwarded over the ssh connection.

Teardown stops nodes and Toxiproxies, copies <run>/nodes and <run>/data back into the results
directory, then removes the run's directory and /etc/hosts block on every host. What cannot
be removed stays listed for `faultbed gc --hosts FILE` (cluster/ssh/gc.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import shutil
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from faultbed.cluster import disk
from faultbed.cluster.backend import DEAD, PAUSED, RUNNING, Link, NodePlan
from faultbed.cluster.docker.images import PROJECT_ROOT, installed_path, node_source_files
from faultbed.cluster.mesh import Mesh
from faultbed.cluster.nodes import NodeBackend, node_names
from faultbed.cluster.ports import PortReservation
from faultbed.cluster.registry import process_start_time, run_env
from faultbed.cluster.ssh.connection import SSHConnection
from faultbed.cluster.ssh.inventory import Host, Inventory, load_inventory
from faultbed.cluster.ssh.remote import RemoteHost, RemoteProcess, tar_of
from faultbed.cluster.systems import System
from faultbed.cluster.toxiproxy import ToxiproxyClient, ToxiproxyError, ToxiproxyGroup, default_binary
from faultbed.errors import FaultbedError, SetupError
from faultbed.interrupts import deferred_interrupts
from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
HOSTS_OPTION = "hosts"
# What faultbed's own node code (raftkv, broker) and the agent need on every host.
HOST_PACKAGES = ("python3", "python3-pysyncobj")
STOP_GRACE = 3.0
TEARDOWN_TIMEOUT = 120.0  # one host's stop or cleanup, over ssh (generous: a loaded host is slow)
CACHE = "cache"  # <workdir>/cache on a host: the Toxiproxy binary, kept between runs (agent.py)
PORT_RANGE = (20000, 32000)  # server ports below the kernel's ephemeral range
T = TypeVar("T")


def inventory_of(spec: TestSpec, nodes: list[str] | tuple[str, ...]) -> Inventory:
    """The run's inventory (spec.options["hosts"]), every node mapped; FaultbedError in one line."""
    path = spec.options.get(HOSTS_OPTION) if isinstance(spec.options, dict) else None
    if not isinstance(path, str) or not path:
        raise FaultbedError("the ssh backend needs --hosts FILE, an inventory of hosts (docs/REMOTE.md)")
    return load_inventory(path, nodes)


def loopback_for(node: str, nodes: list[str]) -> str:
    """The loopback address on node's host where node's proxies listen (127.0.1.<index>)."""
    return f"127.0.1.{nodes.index(node) + 1}"


def harness_identity() -> dict[str, Any]:
    """Who started a run, as written on each host: gc on this machine can tell whether it is alive."""
    pid = os.getpid()
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot_id = fh.read().strip()
    except OSError:
        boot_id = ""
    return {"hostname": socket.gethostname(), "boot_id": boot_id, "pid": pid, "start": process_start_time(pid)}


def busy_message(host: Host, holder: Any, inventory: str) -> str:
    """One line: the host is taken by another run (its lock, agent.py), which run, and how to free it."""
    holder = holder if isinstance(holder, dict) else {}
    harness = holder.get("harness") if isinstance(holder.get("harness"), dict) else {}
    run = harness.get("run_id") or os.path.basename(str(holder.get("run_dir", ""))) or "another run"
    by = f" (harness pid {harness.get('pid')} on {harness.get('hostname')})" if harness.get("pid") else ""
    return (f"host {host.name} ({host.address}) is in use by faultbed run {run}{by}: one run at a time on a host; "
            f"if that run crashed, `faultbed gc --hosts {inventory}` frees it")


class SSHBackend(NodeBackend):
    """Nodes as processes on the inventory's hosts; a context manager that leaves nothing on them."""

    name = "ssh"
    STATE_POLL = 0.05

    @classmethod
    def check_spec(cls, spec: TestSpec, system: System) -> None:
        """Everything about a spec the ssh backend can tell before a run starts (plan.resolve calls it)."""
        inventory_of(spec, node_names(spec.nodes))
        if disk.wanted(spec.nemesis, spec.options):
            raise FaultbedError("the ssh backend cannot inject disk faults (local and docker can)")
        if system.traits.image_files:
            raise FaultbedError(f"system {system.name} copies files into its image ([docker] files): "
                                "the ssh backend does not copy them to hosts")

    def __init__(self, system: System, spec: TestSpec, run_dir: str, run_id: str) -> None:
        super().__init__(system, spec, run_dir, run_id)
        self.check_spec(spec, system)
        self.inventory = inventory_of(spec, self.nodes)
        self.hosts: dict[str, RemoteHost] = {}
        self.clocks: dict[str, dict[str, float]] = {}
        self._connections: dict[str, SSHConnection] = {}
        self._control_dir: str | None = None
        self._reservation = PortReservation(HOST)
        self._ports: dict[str, dict[str, int]] = {}
        self._api_ports: dict[str, int] = {}
        self._api_local: dict[str, int] = {}  # this machine's loopback port forwarded to each host's API
        self._procs: dict[str, RemoteProcess] = {}
        self._toxiproxies: dict[str, RemoteProcess] = {}
        self._last_state: dict[str, str] = {}
        self._cached: dict[str, bool] = {}  # host -> its cache holds our Toxiproxy binary

    # -- where things are ------------------------------------------------------------------
    def host_of(self, node: str) -> Host:
        return self.inventory.host_of(node)

    def remote_dir(self, host: Host) -> str:
        """The run's directory on `host`: everything faultbed puts there."""
        return f"{host.workdir}/{self.run_id}"

    def node_port(self, node: str, port: str) -> int:
        return self._ports[node][port]

    def toxiproxy_pid(self, host: str) -> int | None:
        process = self._toxiproxies.get(host)
        return process.pid if process is not None else None

    def remote_pid(self, node: str) -> int | None:
        process = self._procs.get(node)
        return process.pid if process is not None else None

    # -- lifecycle -------------------------------------------------------------------------
    def _start(self) -> None:
        used = self.inventory.used_hosts()
        self._control_dir = tempfile.mkdtemp(prefix="fbssh-", dir="/tmp")  # short: a socket path has ~100 bytes
        self._record.note("ssh", {"inventory": self.inventory.path,
                                  "hosts": {h.name: self.remote_dir(h) for h in used}})
        _parallel(self._connect, used)
        wanted_ports = len(self.nodes) * len(self.system.ports) + len(used)
        candidates = random.Random(f"{self.run_id}:{os.getpid()}").sample(range(*PORT_RANGE), wanted_ports * 3)
        packages = sorted(set(HOST_PACKAGES) | set(self.system.traits.image_packages))
        free = _parallel(lambda host: self._prepare(host, packages, candidates), used)
        missing_binary = [host for host in used if not self._cached[host.name]]
        self._write_hosts_json()
        self._choose_ports(used, [p for p in candidates if all(p in f for f in free)], wanted_ports)
        code, binary = self._bundle(with_binary=False), self._bundle(with_binary=True)
        _parallel(lambda host: self.hosts[host.name].put_tar(
            host.workdir, binary if host in missing_binary else code), used)
        _parallel(self._start_toxiproxy, used)
        links = [Link(src, dst, port,
                      listen=f"{loopback_for(src, self.nodes)}:{self._ports[dst][port]}",
                      upstream=f"{self.host_of(dst).address}:{self._ports[dst][port]}")
                 for src in self.nodes for dst in self.nodes if src != dst for port in self.system.peer_ports]
        servers = {host.name: ToxiproxyClient(f"http://{HOST}:{self._api_local[host.name]}") for host in used}
        group = ToxiproxyGroup(servers, {link.name: self.host_of(link.src).name for link in links})
        self.mesh = Mesh(group, links, restart_server=self._restart_toxiproxies)
        self.mesh.create()
        _parallel(self._write_etc_hosts, used)
        self._plan_nodes(links)
        _parallel(lambda host: self._spawn(*self.inventory.nodes_on(host.name)), used)
        log.info("ssh: %d nodes of run %s started on %s", len(self.nodes), self.run_id,
                 ", ".join(h.name for h in used))

    def __exit__(self, *exc: object) -> None:
        with deferred_interrupts():  # a Ctrl-C or SIGTERM now is noted, acted on once all is stopped
            self._teardown()

    def _teardown(self) -> None:
        """Stop every node and Toxiproxy, copy logs and data back, remove the run from every host; what
        cannot be done is named in `leftovers` (the run record stays for `faultbed gc --hosts`)."""
        failed: list[str] = []
        for lines in _parallel(self._teardown_host, [remote.host for remote in self.hosts.values()]):
            failed += lines
        for connection in self._connections.values():
            failed += _attempt(f"ssh connection to {connection.host.name}", connection.close)
        self._connections.clear()
        self.hosts.clear()
        self._reservation.release()
        if self._control_dir:
            shutil.rmtree(self._control_dir, ignore_errors=True)
        self.leftovers = failed
        if failed:
            log.error("ssh: could not stop or remove: %s; `faultbed gc --hosts %s` removes them",
                      "; ".join(failed), self.inventory.path)
        else:
            self._record.remove()

    def _teardown_host(self, host: Host) -> list[str]:
        """Stop everything the run started on `host`, copy its logs and data here, remove the run there."""
        remote, directory = self.hosts[host.name], self.remote_dir(host)
        failed: list[str] = []
        if host.name not in self.clocks:  # never prepared: nothing of the run is there
            return failed
        answer: dict[str, Any] = {}
        failed += _attempt(f"processes on {host.name}",
                           lambda: answer.update(remote.agent("stop-all", directory, str(STOP_GRACE),
                                                              timeout=TEARDOWN_TIMEOUT)))
        failed += [f"{item} on {host.name}" for item in answer.get("failed", [])]
        failed += _attempt(f"logs and data of {host.name}", lambda: self._collect(remote, directory))
        answer.clear()
        failed += _attempt(f"run directory {directory} on {host.name}",
                           lambda: answer.update(remote.agent("cleanup", directory, timeout=TEARDOWN_TIMEOUT)))
        failed += [f"{item} on {host.name}" for item in answer.get("failed", [])]
        return failed

    # -- start-up steps --------------------------------------------------------------------
    def _connect(self, host: Host) -> None:
        assert self._control_dir is not None
        connection = SSHConnection(host, self._control_dir, run_env(self.run_id))
        self._connections[host.name] = connection
        connection.open()
        assert connection.pid is not None
        self._record.add_process(f"ssh-{host.name}", connection.pid)
        self.hosts[host.name] = RemoteHost(connection)

    def _prepare(self, host: Host, packages: list[str], ports: list[int]) -> set[int]:
        """In one round trip: the run's directory on the host, how far its clock is from ours, the
        Debian packages the system needs, and which of `ports` are free there (returned)."""
        request = {"run_dir": self.remote_dir(host), "packages": packages, "ports": ports,
                   "cached": self._binary_name,
                   "harness": {**harness_identity(), "run_id": self.run_id, "run_dir": self.run_dir}}
        before = time.time()
        answer = self.hosts[host.name].agent("prepare", json.dumps(request), timeout=900)
        after = time.time()
        if "busy" in answer:  # nothing was made there: the host is not torn down (not in self.clocks)
            raise SetupError(busy_message(host, answer["busy"], self.inventory.path))
        # the host reads its clock first thing; the round trip bounds when that was
        skew = (float(answer["time"]) - (before + after) / 2) * 1000
        uncertainty = (after - before) / 2 * 1000
        self.clocks[host.name] = {"skew_ms": round(skew, 1), "uncertainty_ms": round(uncertainty, 1)}  # prepared
        log.info("ssh: %s clock %+.1f ms (+- %.1f ms) from ours", host.name, skew, uncertainty)
        if abs(skew) - uncertainty > self.inventory.max_clock_skew_ms:
            raise SetupError(f"host {host.name}: its clock is {skew:+.0f} ms off this machine's "
                             f"(max_clock_skew_ms = {self.inventory.max_clock_skew_ms:g})")
        installed, missing = answer["packages"].get("installed"), answer["packages"].get("missing")
        if installed:
            log.info("ssh: installed on %s: %s", host.name, ", ".join(installed))
        if missing:
            raise SetupError(f"host {host.name} lacks {', '.join(missing)} and could not install them "
                             "(apt-get needs root or passwordless sudo there)")
        self._cached[host.name] = bool(answer["cached"])
        return set(answer["free_ports"])

    def _write_hosts_json(self) -> None:
        """hosts.json in the results: each host, its nodes, its clock skew."""
        hosts = {host.name: {"address": host.address, "user": host.user, "port": host.port,
                             "nodes": self.inventory.nodes_on(host.name), **self.clocks.get(host.name, {})}
                 for host in self.inventory.used_hosts()}
        with open(os.path.join(self.run_dir, "hosts.json"), "w", encoding="utf-8") as fh:
            json.dump({"inventory": self.inventory.path, "hosts": hosts}, fh, indent=2, sort_keys=True)

    def _choose_ports(self, used: list[Host], free: list[int], wanted: int) -> None:
        """Every node's ports and each host's Toxiproxy API port, from those free on every host."""
        if len(free) < wanted:
            raise SetupError(f"fewer than {wanted} of the ports tried are free on every host "
                             f"(in {PORT_RANGE[0]}..{PORT_RANGE[1]})")
        taken = iter(free)
        self._ports = {node: {port: next(taken) for port in self.system.ports} for node in self.nodes}
        self._api_ports = {host.name: next(taken) for host in used}

    def _bundle(self, with_binary: bool) -> bytes:
        """What a host gets under its workdir: faultbed's node code in the run's directory (its own systems
        run on it) and, unless cached there already, the Toxiproxy server in cache/."""
        files = [(os.path.join(self.run_id, "code", installed_path(f)), os.path.join(PROJECT_ROOT, f), 0o644)
                 for f in node_source_files(PROJECT_ROOT)]
        if with_binary:
            files.append((os.path.join(CACHE, self._binary_name), default_binary(), 0o755))
        return tar_of(files)

    @functools.cached_property
    def _binary_name(self) -> str:
        """The Toxiproxy server's name in a host's cache: by its content, so a new build is copied again."""
        binary = default_binary()
        if not os.access(binary, os.X_OK):
            raise SetupError(f"{binary} missing: run scripts/setup")
        with open(binary, "rb") as fh:
            return f"toxiproxy-server-{hashlib.sha256(fh.read()).hexdigest()[:16]}"

    def _start_toxiproxy(self, host: Host) -> None:
        directory = self.remote_dir(host)
        remote = self.hosts[host.name]
        self._toxiproxies[host.name] = remote.spawn(directory, [{
            "name": "toxiproxy", "log": f"{directory}/nodes/toxiproxy-{host.name}.log", "cwd": directory,
            "env": run_env(self.run_id),
            "argv": [f"{host.workdir}/{CACHE}/{self._binary_name}", "-host", HOST, "-port", str(self._api_ports[host.name])]}])[0]
        if host.name not in self._api_local:
            self._api_local[host.name] = self._reservation.take()[0]
        remote.connection.forward(self._api_local[host.name], HOST, self._api_ports[host.name])
        self._wait_toxiproxy(host)

    def _wait_toxiproxy(self, host: Host, timeout: float = 10.0) -> None:
        probe = ToxiproxyClient(f"http://{HOST}:{self._api_local[host.name]}", timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                probe.version()
                return
            except ToxiproxyError as exc:
                if time.monotonic() > deadline:
                    raise SetupError(f"host {host.name}: Toxiproxy's API did not answer within {timeout:.0f}s "
                                     f"({exc.message})") from None
            time.sleep(0.05)

    def _restart_toxiproxies(self) -> ToxiproxyClient:
        """A Toxiproxy that stopped answering: every host's is started again (the mesh re-creates the proxies)."""
        for host in self.inventory.used_hosts():
            old = self._toxiproxies.pop(host.name, None)
            if old is not None:
                self.hosts[host.name].stop(old, 1.0)
            self._start_toxiproxy(host)
        return self.mesh.client

    def _write_etc_hosts(self, host: Host) -> None:
        """Names for systems that dial peers by name, where a host runs exactly one node."""
        nodes = self.inventory.nodes_on(host.name)
        if len(nodes) != 1:
            return
        node = nodes[0]
        lines = [f"{host.address} {node}"] + [f"{loopback_for(node, self.nodes)} {peer}"
                                              for peer in self.nodes if peer != node]
        try:
            self.hosts[host.name].agent("hosts-file", self.run_id, json.dumps(lines))
        except SetupError as exc:  # raftkv does not need it; a system that does fails to resolve, visibly
            log.warning("ssh: %s: peer names not written to /etc/hosts: %s", host.name, exc)

    def _plan_nodes(self, links: list[Link]) -> None:
        identity_port = self.system.peer_ports[0] if self.system.peer_ports else self.system.client_port
        identities = {n: f"{n}:{self._ports[n][identity_port]}" for n in self.nodes}
        for node in self.nodes:
            host = self.host_of(node)
            dial: dict[str, dict[str, str]] = {link.dst: {} for link in links if link.src == node}
            for link in links:
                if link.src == node:
                    dial[link.dst][link.port] = link.listen
            self._plans[node] = NodePlan(
                name=node, nodes=tuple(self.nodes), listen_host=host.address, ports=dict(self._ports[node]),
                identities=identities, dial=dial, data_dir=f"{self.remote_dir(host)}/data/{node}",
                python=host.python, bugs=self.spec.bugs, options=dict(self.spec.options))

    def _spawn(self, *nodes: str) -> None:
        """Start `nodes` (all on one host) in one round trip."""
        if not nodes:
            return
        host = self.host_of(nodes[0])
        directory = self.remote_dir(host)
        specs = []
        for node in nodes:
            plan = self._plans[node]
            env = {**run_env(self.run_id), "PYTHONPATH": f"{directory}/code", "PYTHONUNBUFFERED": "1",
                   "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8", "HOME": plan.data_dir}
            specs.append({"name": node, "log": f"{directory}/nodes/{node}.log", "cwd": plan.data_dir, "env": env,
                          "argv": self.system.command(plan)})
        for node, process in zip(nodes, self.hosts[host.name].spawn(directory, specs)):
            self._procs[node] = process
            self._last_state[node] = RUNNING
            self._started(node)
            log.info("ssh: started %s on %s, pid %d", node, host.name, process.pid)

    def _collect(self, remote: RemoteHost, directory: str) -> None:
        remote.fetch_directory(directory, ["nodes", "data"], self.run_dir)

    # -- Backend protocol ------------------------------------------------------------------
    def client_address(self, node: str) -> tuple[str, int]:
        return self.host_of(node).address, self._ports[node][self.system.client_port]

    def kill(self, node: str) -> None:
        """SIGKILL the node's recorded pid on its host: no chance to flush or say goodbye."""
        process = self._procs.get(node)
        self._stopping(node)
        if process is not None and self.state(node) != DEAD:
            self._signal(node, "SIGKILL", DEAD)
        log.info("killed %s", node)

    def pause(self, node: str) -> None:
        self._signal(node, "SIGSTOP", PAUSED)

    def resume(self, node: str) -> None:
        self._signal(node, "SIGCONT", RUNNING)

    def restart(self, node: str) -> None:
        """Start the node again with the same data directory (stopping it first if it runs)."""
        if self._state_noting_exit(node) != DEAD:  # (a node without a process is dead)
            self._stopping(node)
            self._remote(node).stop(self._procs[node], STOP_GRACE)
        self._spawn(node)

    def start(self, node: str) -> None:
        if self._state_noting_exit(node) == DEAD:
            self._spawn(node)

    def state(self, node: str) -> str:
        process = self._procs.get(node)
        if process is None:
            return DEAD
        state = self._remote(node).state([process])[0]
        if state == DEAD and self._last_state.get(node) != DEAD:
            self._fetch_log(node)  # a node that died: its log is readable here (start-up errors name its end)
        self._last_state[node] = state
        return state

    # -- internals -------------------------------------------------------------------------
    def _remote(self, node: str) -> RemoteHost:
        return self.hosts[self.host_of(node).name]

    def _signal(self, node: str, signal_name: str, wanted: str) -> None:
        """Send the signal to the node's recorded pid; the agent waits there until it is `wanted` (one round trip)."""
        process = self._procs.get(node)
        if process is None:
            raise SetupError(f"{node} is not running")
        state = self._remote(node).signal(process, signal_name, wanted, STOP_GRACE)
        if state == DEAD and wanted != DEAD:
            raise SetupError(f"{node} is not running")
        if state != wanted:
            raise SetupError(f"{node} did not become {wanted} within {STOP_GRACE:g}s of {signal_name} (it is {state})")
        self._last_state[node] = state

    def _fetch_log(self, node: str) -> None:
        directory = self.remote_dir(self.host_of(node))
        content = self._remote(node).read_file(f"{directory}/nodes/{node}.log")
        with open(self.log_path(node), "wb") as fh:
            fh.write(content)


def _parallel(function: Callable[[Host], T], hosts: list[Host]) -> list[T]:
    """`function` for every host at once (each is mostly waiting on ssh); the first error is raised."""
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        return list(pool.map(function, hosts))


def _attempt(what: str, call: Callable[[], object]) -> list[str]:
    """Run one teardown step; a failure becomes a line (the other steps still run)."""
    try:
        call()
    except Exception as exc:  # one stubborn host must not keep the others' processes running
        return [f"{what}: {exc}"]
    return []
