"""DockerBackend: nodes as containers on isolated networks, every link through one Toxiproxy container.

The lifecycle, the Backend protocol's verbs, the Toxiproxy container and the node containers;
images, networks and cleanup are the package's other rooms.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from typing import Any

import docker.errors
import docker.types
from docker.client import DockerClient
from docker.models.containers import Container

from faultbed.cluster import disk
from faultbed.cluster.backend import DEAD, PAUSED, RUNNING, Link, NodePlan
from faultbed.cluster.docker.engine import (LABEL_HARNESS, LABEL_ROLE, LABEL_RUN, api_timeout, docker_client,
                                           engine_trouble, ignore_conflict, parallel)
from faultbed.cluster.docker.gc import remove_run_resources
from faultbed.cluster.docker.images import node_image, require_image, toxiproxy_image
from faultbed.cluster.docker.network import FIRST_PEER_ADDRESS, SUBNET_PREFIX, create_network, hosts
from faultbed.cluster.mesh import Mesh
from faultbed.cluster.nodes import NodeBackend
from faultbed.cluster.ports import PortReservation
from faultbed.cluster.registry import process_start_time
from faultbed.cluster.systems import System
from faultbed.cluster.toxiproxy import ToxiproxyClient, ToxiproxyError
from faultbed.errors import SetupError
from faultbed.interrupts import deferred_interrupts
from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
FIRST_NODE_PORT = 7000          # system port k listens on 7000+k in every container
TOXIPROXY_API_PORT = 8474
NODE_PYTHON = "/usr/bin/python3"
STOP_GRACE = 3
LOG_ENV = "FAULTBED_NODE_LOG"
# Runs the node's command with its output appended to the bind-mounted log file.
LOG_WRAPPER = ["sh", "-c", f'exec "$@" >>"${LOG_ENV}" 2>&1', "sh"]
# Adds each "address/prefix" to the interface that holds the paired primary address.
ADD_ADDRESSES = ["sh", "-ec", 'while [ "$#" -gt 0 ]; do '
                 'ip addr replace "$1" dev "$(ip -o -4 addr show to "$2" | cut -d" " -f2)"; shift 2; done', "sh"]


class DockerBackend(NodeBackend):
    """Nodes as containers on isolated networks; a context manager that removes everything it made."""

    name = "docker"
    STATE_POLL = 0.02

    def __init__(self, system: System, spec: TestSpec, run_dir: str, run_id: str) -> None:
        super().__init__(system, spec, run_dir, run_id)
        if len(self.nodes) > 2 ** (32 - SUBNET_PREFIX) - FIRST_PEER_ADDRESS - 2:
            raise SetupError(f"the docker backend runs at most "
                             f"{2 ** (32 - SUBNET_PREFIX) - FIRST_PEER_ADDRESS - 2} nodes")
        self.ports = {port: FIRST_NODE_PORT + k for k, port in enumerate(system.ports)}
        self.labels = {LABEL_RUN: run_id, LABEL_HARNESS: f"{os.getpid()}:{process_start_time(os.getpid())}"}
        self._client: DockerClient | None = None
        self._reservation = PortReservation(HOST)
        self._subnets: dict[str, ipaddress.IPv4Network] = {}
        self._containers: dict[str, Container] = {}
        self._client_ports: dict[str, int] = {}
        self._toxiproxy: Container | None = None
        self._toxiproxy_client: ToxiproxyClient
        self._toxiproxy_api_port = 0

    # -- lifecycle ---------------------------------------------------------------------
    def __exit__(self, *exc: object) -> None:
        with deferred_interrupts():  # a Ctrl-C or SIGTERM now is noted, acted on once all is removed
            self._teardown()

    def _teardown(self) -> None:
        """Remove every container and network of the run; what cannot be removed is named in
        `leftovers` and stays in the run record (its labels let `faultbed gc` find it)."""
        failed: list[str] = []
        if self._client is not None:
            try:
                self._save_toxiproxy_log()
                remove_run_resources(self._client, lambda labels: True, self.run_id)
                label = {"label": f"{LABEL_RUN}={self.run_id}"}
                failed += [f"container {c['Names'][0].lstrip('/')}"
                           for c in self._client.api.containers(all=True, filters=label)]
                failed += [f"network {n['Name']}" for n in self._client.api.networks(filters=label)]
            except Exception as exc:
                failed.append(f"docker resources of run {self.run_id}: {exc}")
            self._client.close()
            self._client = None
        for mount in self._disks.values():  # after the containers, whose bind mounts hold them
            try:
                mount.unmount()
            except Exception as exc:
                failed.append(f"disk mount {mount.mountpoint}: {exc}")
        self._reservation.release()
        self.leftovers = failed
        if failed:
            log.error("docker: could not remove: %s; `faultbed gc` removes them", "; ".join(failed))
        else:
            self._record.remove()

    def _start(self) -> None:
        """Networks, Toxiproxy, the mesh and every node; the engine failing on the way (no answer
        within the API timeout, a 5xx) is a setup failure (exit 3), not a bug of faultbed."""
        try:
            self._start_cluster()
        except Exception as exc:
            if not engine_trouble(exc):
                raise
            raise SetupError(f"docker: the engine failed while starting the cluster ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); with a busy engine, "
                             f"a longer FAULTBED_DOCKER_TIMEOUT (now {api_timeout():g} s) may help") from exc

    def _start_cluster(self) -> None:
        self._client = client = docker_client()
        images = node_image(traits=self.system.traits), toxiproxy_image()
        for image in images:
            require_image(client, image, self.system.traits)
        self._record.note("docker", {"labels": self.labels, "names": f"faultbed-{self.run_id}-*"})
        for node, subnet in zip(self.nodes, parallel(self._create_network, self.nodes)):
            self._subnets[node] = subnet
        links = self._links()
        self._start_toxiproxy(images[1])
        self.mesh = Mesh(self._toxiproxy_client, links, restart_server=self._restart_toxiproxy)
        self.mesh.create()
        self._plan_nodes()
        parallel(lambda node: self._create_node(node, images[0]), self.nodes)
        parallel(self._start_container, self.nodes)
        log.info("docker: %d nodes of run %s started", len(self.nodes), self.run_id)

    # -- Backend protocol ------------------------------------------------------------------
    def client_address(self, node: str) -> tuple[str, int]:
        return HOST, self._client_ports[node]

    def node_address(self, node: str) -> str:
        """The node's own address on its own network (only Toxiproxy can reach it)."""
        return self._address(node, 2)

    def peer_address(self, node: str, peer: str) -> str:
        """The address `node` reaches `peer` at: Toxiproxy's address on node's network reserved for peer."""
        return self._address(node, FIRST_PEER_ADDRESS + self.nodes.index(peer) + 1)

    def container(self, node: str) -> Container:
        return self._containers[node]

    def pid(self, node: str) -> int | None:
        """The node container's init process as the host sees it, while it runs."""
        state = self._container_state(node)
        return int(state["Pid"]) if state.get("Running") and state.get("Pid") else None

    def kill(self, node: str) -> None:
        """SIGKILL every process of the node's container: no chance to flush or say goodbye."""
        container = self._containers[node]
        self._stopping(node)
        if self.state(node) != DEAD:
            ignore_conflict(container.kill, "SIGKILL")
            self._wait_state(node, DEAD, STOP_GRACE)
        log.info("killed %s", node)

    def pause(self, node: str) -> None:
        """Freeze every process of the node (cgroup freezer)."""
        if self.state(node) != RUNNING:
            raise SetupError(f"{node} is not running")
        self._containers[node].pause()
        self._wait_state(node, PAUSED)

    def resume(self, node: str) -> None:
        if self.state(node) != PAUSED:
            raise SetupError(f"{node} is not paused")
        self._containers[node].unpause()
        self._wait_state(node, RUNNING)

    def restart(self, node: str) -> None:
        """Start the node again with the same data directory (stopping it first if it runs)."""
        container = self._containers[node]
        state = self._state_noting_exit(node)
        if state == PAUSED:
            container.unpause()  # a frozen process cannot act on SIGTERM
        if state != DEAD:
            self._stopping(node)
            container.stop(timeout=STOP_GRACE)
            self._wait_state(node, DEAD, STOP_GRACE)
        self._start_container(node)
        log.info("restarted %s", node)

    def start(self, node: str) -> None:
        if self._state_noting_exit(node) == DEAD:
            self._start_container(node)

    def _start_container(self, node: str) -> None:
        self._containers[node].start()
        self._started(node)

    def exit_status(self, node: str) -> int | None:
        code = self._container_state(node).get("ExitCode")
        return int(code) if isinstance(code, int) else None

    def state(self, node: str) -> str:
        state = self._container_state(node)
        if state.get("Paused"):
            return PAUSED
        return RUNNING if state.get("Running") else DEAD

    # -- networks ----------------------------------------------------------------------
    def _create_network(self, node: str) -> ipaddress.IPv4Network:
        assert self._client is not None
        return create_network(self._client, self._network_name(node), {**self.labels, LABEL_ROLE: f"network-{node}"})

    def _network_name(self, node: str) -> str:
        return f"faultbed-{self.run_id}-{node}"

    def _address(self, node: str, index: int) -> str:
        return hosts(self._subnets[node])[index]

    def _links(self) -> list[Link]:
        return [Link(src, dst, port,
                     listen=f"{self.peer_address(src, dst)}:{self.ports[port]}",
                     upstream=f"{self.node_address(dst)}:{self.ports[port]}")
                for src in self.nodes for dst in self.nodes if src != dst for port in self.system.peer_ports]

    # -- Toxiproxy ---------------------------------------------------------------------
    def _start_toxiproxy(self, image: str) -> None:
        assert self._client is not None
        api = self._client.api
        api_port = self._reservation.take()[0]
        first = self.nodes[0]
        created = api.create_container(
            image, name=f"faultbed-{self.run_id}-toxiproxy", labels={**self.labels, LABEL_ROLE: "toxiproxy"},
            ports=[TOXIPROXY_API_PORT],
            host_config=api.create_host_config(cap_add=["NET_ADMIN"],
                                               port_bindings={TOXIPROXY_API_PORT: (HOST, api_port)}),
            networking_config=api.create_networking_config(
                {self._network_name(first): api.create_endpoint_config(ipv4_address=self._address(first, 3))}))
        self._toxiproxy = self._client.containers.get(created["Id"])
        for node in self.nodes[1:]:
            api.connect_container_to_network(created["Id"], self._network_name(node),
                                             ipv4_address=self._address(node, 3))
        self._toxiproxy.start()
        self._add_peer_addresses()
        self._toxiproxy_api_port = api_port
        self._toxiproxy_client = ToxiproxyClient(f"http://{HOST}:{api_port}")
        self._wait_toxiproxy(api_port)

    def _add_peer_addresses(self) -> None:
        assert self._toxiproxy is not None
        extra = []
        for node in self.nodes:
            for peer in self.nodes:
                if peer != node:
                    extra += [f"{self.peer_address(node, peer)}/{SUBNET_PREFIX}", self._address(node, 3)]
        if extra:
            code, output = self._toxiproxy.exec_run(ADD_ADDRESSES + extra)
            if code != 0:
                raise SetupError(f"docker: cannot add the peer addresses to Toxiproxy: {output.decode().strip()}")

    def _restart_toxiproxy(self) -> ToxiproxyClient:
        """Restart a Toxiproxy container that stopped answering; its extra addresses are added again."""
        assert self._toxiproxy is not None
        log.warning("docker: restarting the Toxiproxy container of run %s", self.run_id)
        self._toxiproxy.reload()
        if self._toxiproxy.status == "paused":  # Docker refuses to restart a paused (frozen) container
            self._toxiproxy.unpause()
        self._toxiproxy.restart(timeout=1)
        self._add_peer_addresses()
        self._wait_toxiproxy(self._toxiproxy_api_port)
        return self._toxiproxy_client

    def _wait_toxiproxy(self, api_port: int, timeout: float = 10.0) -> None:
        probe = ToxiproxyClient(f"http://{HOST}:{api_port}", timeout=0.5)
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while time.monotonic() < deadline:
            try:
                probe.version()
                return
            except ToxiproxyError as exc:
                last_error = exc.message
            time.sleep(0.05)
        raise SetupError(f"the Toxiproxy container's API on {HOST}:{api_port} did not answer within "
                         f"{timeout:.0f}s ({last_error})")

    def _save_toxiproxy_log(self) -> None:
        if self._toxiproxy is None:
            return
        try:
            output = self._toxiproxy.logs(stdout=True, stderr=True)
        except docker.errors.DockerException as exc:
            log.warning("docker: no Toxiproxy log: %s", exc)
            return
        with open(os.path.join(self.run_dir, "nodes", "toxiproxy.log"), "wb") as fh:
            fh.write(output)

    # -- nodes -------------------------------------------------------------------------
    def _plan_nodes(self) -> None:
        identity_port = self.system.peer_ports[0] if self.system.peer_ports else self.system.client_port
        identities = {n: f"{n}:{self.ports[identity_port]}" for n in self.nodes}
        with_disk = disk.wanted(self.spec.nemesis, self.spec.options)
        for node in self.nodes:
            dial = {peer: {port: f"{peer}:{self.ports[port]}" for port in self.system.peer_ports}
                    for peer in self.nodes if peer != node}
            self._plans[node] = NodePlan(
                name=node, nodes=tuple(self.nodes), listen_host="0.0.0.0", ports=dict(self.ports),
                identities=identities, dial=dial,
                data_dir=self._mount_disk(node) if with_disk else os.path.join(self.run_dir, "data", node),
                python=NODE_PYTHON, bugs=self.spec.bugs, options=dict(self.spec.options))
            os.makedirs(self._plans[node].data_dir, exist_ok=True)
            self._client_ports[node] = self._reservation.take()[0]

    def _create_node(self, node: str, image: str) -> None:
        assert self._client is not None
        api = self._client.api
        plan = self._plans[node]
        log_path = self.log_path(node)
        open(log_path, "ab").close()
        client_port = self.ports[self.system.client_port]
        created = api.create_container(
            image, command=LOG_WRAPPER + self.system.command(plan), name=f"faultbed-{self.run_id}-{node}",
            hostname=node, user=f"{os.getuid()}:{os.getgid()}", working_dir=plan.data_dir,
            environment={LOG_ENV: log_path, "HOME": plan.data_dir},
            labels={**self.labels, LABEL_ROLE: f"node-{node}"}, ports=[client_port],
            host_config=api.create_host_config(
                init=True, port_bindings={client_port: (HOST, self._client_ports[node])},
                mounts=[docker.types.Mount(path, path, type="bind") for path in (plan.data_dir, log_path)]
                + [docker.types.Mount(path, path, type="bind", read_only=True)
                   for path in self.system.traits.host_dirs],
                extra_hosts={peer: self.peer_address(node, peer) for peer in self.nodes if peer != node}),
            networking_config=api.create_networking_config(
                {self._network_name(node): api.create_endpoint_config(ipv4_address=self.node_address(node))}))
        self._containers[node] = self._client.containers.get(created["Id"])

    def _container_state(self, node: str) -> dict[str, Any]:
        container = self._containers[node]
        try:
            container.reload()
        except docker.errors.NotFound:
            return {}
        return dict(container.attrs.get("State") or {})
