"""The Docker backend: every node in its own container, every link through one Toxiproxy container.

Networks and addresses. Each node `ni` sits alone on its own bridge network
`faultbed-<run>-ni`, a /26 taken from FAULTBED_DOCKER_POOL (default
10.213.0.0/16; the Docker daemon refuses overlapping subnets, so parallel runs
simply try the next one). In that subnet:

    .1  the bridge (host side)      .2  node ni        .3  the Toxiproxy container
    .8+j  an extra address of the Toxiproxy container, reserved for peer nj

Docker gives a container one address per network, so the extra addresses are
added inside the Toxiproxy container with `ip addr add` (it has NET_ADMIN);
they lie outside the network's IPAM range (.0/29), so Docker never hands them
out. Node ni's /etc/hosts maps every peer name nj to its reserved address, and
the proxy ni->nj listens there on nj's real port (every node uses the same
ports), forwarding to nj's .2 on nj's network. Bridges are isolated from one
another by Docker's iptables rules and masquerading is off, so a node reaches
nothing but its own network: peers only through Toxiproxy, by their names.

Nodes run with the same identities as anywhere (`n2:7000`), listen on 0.0.0.0
and publish only the client port, on 127.0.0.1 (a port from PortReservation);
the Toxiproxy API is published on 127.0.0.1 the same way. A node's data
directory and its log (<run>/nodes/<node>.log) are bind-mounted at the same
path as on the host and written as the harness's user, so a restart keeps the
data and the log is live. Every container and network carries the labels
`faultbed.run=<run id>` and `faultbed.harness=<pid>:<start time>`; `gc_docker`
removes those whose harness is gone.

Images (built by docker/build): faultbed/node:<hash of the project code> and
faultbed/toxiproxy:latest, both on faultbed/base (Debian from mmdebstrap).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, Iterable, TypeVar

import docker.errors
import docker.types
from docker.client import DockerClient  # (not `docker.DockerClient`: mypy may take ./docker for the package)
from docker.models.containers import Container

from faultbed.cluster import disk
from faultbed.cluster.backend import DEAD, PAUSED, RUNNING, Link, NodePlan
from faultbed.cluster.mesh import Mesh
from faultbed.cluster.ports import PortReservation
from faultbed.cluster.registry import RunRecord, is_alive, process_start_time
from faultbed.cluster.systems import DEFAULT_TRAITS, System, SystemTraits
from faultbed.cluster.toxiproxy import ToxiproxyClient, ToxiproxyError
from faultbed.errors import SetupError
from faultbed.interrupts import deferred_interrupts
from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
LABEL_RUN = "faultbed.run"
LABEL_HARNESS = "faultbed.harness"
LABEL_ROLE = "faultbed.role"
IMAGE_REPOSITORY = os.environ.get("FAULTBED_IMAGE_REPOSITORY", "faultbed")
NODE_IMAGE_ENV = "FAULTBED_NODE_IMAGE"  # run another node image than the current code's (at your own risk)
SUBNET_POOL = os.environ.get("FAULTBED_DOCKER_POOL", "10.213.0.0/16")
SUBNET_PREFIX = 26
FIRST_PEER_ADDRESS = 8          # .8+j in a node's subnet is reserved for peer j
DYNAMIC_RANGE_PREFIX = 29       # Docker's IPAM may hand out .0-.7 only
FIRST_NODE_PORT = 7000          # system port k listens on 7000+k in every container
TOXIPROXY_API_PORT = 8474
NODE_PYTHON = "/usr/bin/python3"
# Each source folder of the node image and where it lives under the one import name.
NODE_PACKAGES = {"faultbed": "faultbed", "cluster": "faultbed/cluster", "nemesis": "faultbed/nemesis",
                 "checkers": "faultbed/checkers"}
NODE_DOCKERFILE = os.path.join("docker", "node.Dockerfile")
API_TIMEOUT = 60.0
STOP_GRACE = 3
PARALLEL = 8
LOG_ENV = "FAULTBED_NODE_LOG"
# Runs the node's command with its output appended to the bind-mounted log file.
LOG_WRAPPER = ["sh", "-c", f'exec "$@" >>"${LOG_ENV}" 2>&1', "sh"]
# Adds each "address/prefix" to the interface that holds the paired primary address.
ADD_ADDRESSES = ["sh", "-ec", 'while [ "$#" -gt 0 ]; do '
                 'ip addr replace "$1" dev "$(ip -o -4 addr show to "$2" | cut -d" " -f2)"; shift 2; done', "sh"]

T = TypeVar("T")


# -- images ---------------------------------------------------------------------------
def node_source_files(root: str = PROJECT_ROOT) -> list[str]:
    """The files the node image carries: the project's Python packages, sorted, relative to `root`.

    Compiled files, caches and Go modules (checkers/porcupine) stay out.
    """
    files = []
    for package in NODE_PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
            if "go.mod" in filenames:
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames
                           if not d.startswith(".") and d != "__pycache__" and not d.endswith(".egg-info")]
            for name in filenames:
                if name.startswith(".") or name.endswith((".pyc", ".so", ".o", ".h")):
                    continue
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(files)


def installed_path(relative: str) -> str:
    """Where a source file (relative to the repository) lives in the installed package tree."""
    top, _, rest = relative.partition(os.sep)
    return os.path.join(NODE_PACKAGES[top], rest)


def source_hash(root: str = PROJECT_ROOT) -> str:
    """A short hash of the node image's content: its Dockerfile and every file it carries."""
    digest = hashlib.sha256()
    for relative in [NODE_DOCKERFILE, *node_source_files(root)]:
        with open(os.path.join(root, relative), "rb") as fh:
            digest.update(f"{relative}\0{hashlib.sha256(fh.read()).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def extras_hash(packages: Iterable[str] = (), files: Iterable[tuple[str, str]] = ()) -> str:
    """A short hash of what a system adds to the node image (packages, files' contents); "" for nothing."""
    packages, files = sorted(set(packages)), sorted(files)
    if not packages and not files:
        return ""
    digest = hashlib.sha256(json.dumps(packages).encode())
    for target, source in files:
        with open(source, "rb") as fh:
            digest.update(f"{target}\0{hashlib.sha256(fh.read()).hexdigest()}\n".encode())
    return digest.hexdigest()[:10]


def node_image(root: str = PROJECT_ROOT, repository: str = IMAGE_REPOSITORY,
               traits: SystemTraits = DEFAULT_TRAITS) -> str:
    """The node image built for the code in `root` and the system's `traits` (extra packages, files).

    NODE_IMAGE_ENV, when set, names another one.
    """
    extra = extras_hash(traits.image_packages, traits.image_files)
    return os.environ.get(NODE_IMAGE_ENV) or f"{repository}/node:{source_hash(root)}" + (f"-{extra}" if extra else "")


def build_arguments(traits: SystemTraits = DEFAULT_TRAITS) -> list[str]:
    """docker/build's arguments for a node image with the system's extra packages and files."""
    arguments = [f"--package={package}" for package in traits.image_packages]
    return arguments + [f"--file={target}={source}" for target, source in traits.image_files]


def toxiproxy_image(repository: str = IMAGE_REPOSITORY) -> str:
    return f"{repository}/toxiproxy:latest"


def docker_client(timeout: float = API_TIMEOUT) -> DockerClient:
    """A client of the Docker engine (DOCKER_HOST or the local socket) that answers, or SetupError."""
    try:
        client = DockerClient.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise SetupError(f"cannot reach the Docker engine: {exc}") from exc
    return client


BUILD_SCRIPT = os.path.join(PROJECT_ROOT, "docker", "build")
BUILD_SCRIPT_TIMEOUT = 900.0


def require_image(client: DockerClient, image: str, traits: SystemTraits = DEFAULT_TRAITS) -> None:
    """The image must exist; in a source checkout, missing images are built first (docker/build).

    The node image is tagged by a hash of the code, so after an edit only its small
    code layer is rebuilt (seconds); a missing base takes about a minute.
    """
    if _image_present(client, image):
        return
    if os.access(BUILD_SCRIPT, os.X_OK) and NODE_IMAGE_ENV not in os.environ:
        log.warning("Docker image %s missing: building it with %s", image, BUILD_SCRIPT)
        try:
            subprocess.run([BUILD_SCRIPT, *build_arguments(traits)], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=BUILD_SCRIPT_TIMEOUT)
        except subprocess.CalledProcessError as exc:
            last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise SetupError(f"building the Docker images failed: {last[0]}") from None
        except subprocess.TimeoutExpired:
            raise SetupError(f"building the Docker images took over {BUILD_SCRIPT_TIMEOUT:.0f}s") from None
        if _image_present(client, image):
            return
    raise SetupError(f"Docker image {image} not found (images are built for the current code): "
                     "run `make images` (docker/build)")


def _image_present(client: DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


# -- addresses ------------------------------------------------------------------------
def _hosts(subnet: ipaddress.IPv4Network) -> list[str]:
    return [str(subnet.network_address + i) for i in range(subnet.num_addresses)]


def _host_routes() -> list[ipaddress.IPv4Network]:
    """Networks this machine routes (from /proc/net/route), which a new subnet must not overlap."""
    routes = []
    try:
        with open("/proc/net/route", encoding="ascii") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                destination, mask = (int(fields[i], 16).to_bytes(4, "little") for i in (1, 7))
                if int.from_bytes(mask, "big"):
                    routes.append(ipaddress.IPv4Network(
                        (ipaddress.IPv4Address(destination), ipaddress.IPv4Address(mask).exploded), strict=False))
    except OSError:
        pass
    return routes


class DockerBackend:
    """Nodes as containers on isolated networks; a context manager that removes everything it made."""

    name = "docker"

    def __init__(self, system: System, spec: TestSpec, run_dir: str, run_id: str) -> None:
        self.system = system
        self.spec = spec
        self.run_dir = os.path.abspath(run_dir)
        self.run_id = run_id
        self.nodes = [f"n{i}" for i in range(1, spec.nodes + 1)]
        if len(self.nodes) > 2 ** (32 - SUBNET_PREFIX) - FIRST_PEER_ADDRESS - 2:
            raise SetupError(f"the docker backend runs at most "
                             f"{2 ** (32 - SUBNET_PREFIX) - FIRST_PEER_ADDRESS - 2} nodes")
        self.ports = {port: FIRST_NODE_PORT + k for k, port in enumerate(system.ports)}
        self.labels = {LABEL_RUN: run_id, LABEL_HARNESS: f"{os.getpid()}:{process_start_time(os.getpid())}"}
        self.mesh: Mesh
        self._client: DockerClient | None = None
        self._reservation = PortReservation(HOST)
        self._record = RunRecord(run_id, self.run_dir)
        self._subnets: dict[str, ipaddress.IPv4Network] = {}
        self._containers: dict[str, Container] = {}
        self._plans: dict[str, NodePlan] = {}
        self._client_ports: dict[str, int] = {}
        self._toxiproxy: Container | None = None
        self._toxiproxy_client: ToxiproxyClient
        self._disks: dict[str, disk.DiskMount] = {}
        self._toxiproxy_api_port = 0
        self.leftovers: list[str] = []  # what teardown could not remove
        os.makedirs(os.path.join(self.run_dir, "nodes"), exist_ok=True)

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "DockerBackend":
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

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
        self._client = client = docker_client()
        images = node_image(traits=self.system.traits), toxiproxy_image()
        for image in images:
            require_image(client, image, self.system.traits)
        self._record.note("docker", {"labels": self.labels, "names": f"faultbed-{self.run_id}-*"})
        for node, subnet in zip(self.nodes, _parallel(self._create_network, self.nodes)):
            self._subnets[node] = subnet
        links = self._links()
        self._start_toxiproxy(images[1])
        self.mesh = Mesh(self._toxiproxy_client, links, restart_server=self._restart_toxiproxy)
        self.mesh.create()
        self._plan_nodes()
        _parallel(lambda node: self._create_node(node, images[0]), self.nodes)
        _parallel(lambda node: self._containers[node].start(), self.nodes)
        log.info("docker: %d nodes of run %s started", len(self.nodes), self.run_id)

    # -- Backend protocol ------------------------------------------------------------------
    def node_names(self) -> list[str]:
        return list(self.nodes)

    def client_address(self, node: str) -> tuple[str, int]:
        return HOST, self._client_ports[node]

    def plan(self, node: str) -> NodePlan:
        return self._plans[node]

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
        if self.state(node) != DEAD:
            _ignore_conflict(container.kill, "SIGKILL")
            self._wait_state(node, DEAD, STOP_GRACE)
        log.info("killed %s", node)

    def power_loss(self, node: str) -> None:
        """SIGKILL the container, then its disk forgets every write it did not fsync; restart() brings it back.

        The FUSE mount lives on this machine and is bind-mounted into the container; a restarted
        container binds the fresh mount."""
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

    def data_dir(self, node: str) -> str:
        """Where the node reads and writes its data (the same path inside and outside its container)."""
        return self._plans[node].data_dir

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
        state = self.state(node)
        if state == PAUSED:
            container.unpause()  # a frozen process cannot act on SIGTERM
        if state != DEAD:
            container.stop(timeout=STOP_GRACE)
            self._wait_state(node, DEAD, STOP_GRACE)
        container.start()
        log.info("restarted %s", node)

    def start(self, node: str) -> None:
        if self.state(node) == DEAD:
            self._containers[node].start()

    def state(self, node: str) -> str:
        state = self._container_state(node)
        if state.get("Paused"):
            return PAUSED
        return RUNNING if state.get("Running") else DEAD

    def log_path(self, node: str) -> str:
        return os.path.join(self.run_dir, "nodes", f"{node}.log")

    # -- networks ----------------------------------------------------------------------
    def _create_network(self, node: str) -> ipaddress.IPv4Network:
        """A bridge network for `node` on a free /26 of the pool; Docker itself refuses overlaps."""
        assert self._client is not None
        try:
            pool = ipaddress.IPv4Network(SUBNET_POOL)
        except ValueError as exc:
            raise SetupError(f"FAULTBED_DOCKER_POOL={SUBNET_POOL!r} is not an IPv4 network: {exc}") from None
        candidates = list(pool.subnets(new_prefix=SUBNET_PREFIX))
        start = random.randrange(len(candidates))
        taken = _host_routes() + _docker_subnets(self._client)
        for subnet in candidates[start:] + candidates[:start]:
            if any(subnet.overlaps(other) for other in taken):
                continue
            dynamic = next(subnet.subnets(new_prefix=DYNAMIC_RANGE_PREFIX))
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                subnet=str(subnet), iprange=str(dynamic), gateway=_hosts(subnet)[1])])
            try:
                self._client.networks.create(
                    f"faultbed-{self.run_id}-{node}", driver="bridge", ipam=ipam, check_duplicate=True,
                    labels={**self.labels, LABEL_ROLE: f"network-{node}"},
                    options={"com.docker.network.bridge.enable_ip_masquerade": "false"})
            except docker.errors.APIError as exc:
                if "overlap" in str(exc).lower():
                    taken.append(subnet)
                    continue
                raise SetupError(f"docker: cannot create the network of {node}: {exc.explanation}") from exc
            return subnet
        raise SetupError(f"docker: no free /{SUBNET_PREFIX} left in {SUBNET_POOL} (FAULTBED_DOCKER_POOL)")

    def _network_name(self, node: str) -> str:
        return f"faultbed-{self.run_id}-{node}"

    def _address(self, node: str, index: int) -> str:
        return _hosts(self._subnets[node])[index]

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

    def _mount_disk(self, node: str) -> str:
        """faultbed-diskfs over data/<node> (the disk) at mnt/<node>, which the container binds."""
        mount = disk.DiskMount(node, os.path.join(self.run_dir, "data", node), os.path.join(self.run_dir, "mnt", node),
                               record=self._record, run_id=self.run_id, log_path=self.log_path(f"diskfs-{node}"),
                               writeback=float(self.spec.options.get("diskfs_writeback", 0)))
        self._disks[node] = mount
        mount.__enter__()
        return mount.mountpoint

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
                mounts=[docker.types.Mount(path, path, type="bind") for path in (plan.data_dir, log_path)],
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

    def _wait_state(self, node: str, wanted: str, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state(node) != wanted:
            if time.monotonic() > deadline:
                raise SetupError(f"{node} did not become {wanted} within {timeout}s")
            time.sleep(0.02)


# -- cleanup --------------------------------------------------------------------------
def remove_run_resources(client: DockerClient, doomed: Callable[[dict[str, str]], bool],
                         run_id: str | None = None) -> list[str]:
    """Remove faultbed containers, then networks (of `run_id`, or of any run) that `doomed` picks by labels.

    Returns their names. Uses the plain listings: other runs may remove their own meanwhile.
    """
    label = f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN
    containers = [c for c in client.api.containers(all=True, filters={"label": label})
                  if doomed(c.get("Labels") or {})]
    removed = _parallel(lambda c: _remove(f"container {c['Names'][0].lstrip('/')}", client.api.remove_container,
                                          c["Id"], force=True, v=True), containers)
    networks = [n for n in client.api.networks(filters={"label": label}) if doomed(n.get("Labels") or {})]
    removed += _parallel(lambda n: _remove(f"network {n['Name']}", client.api.remove_network, n["Id"]), networks)
    return [name for name in removed if name]


def gc_docker(include_live: bool = False, live_run_ids: Collection[str] | None = None) -> int:
    """Remove faultbed containers and networks of runs that are not alive; how many it removed.

    A run is alive while the harness named by its `faultbed.harness` label (pid and start
    time) runs, or, given `live_run_ids`, when its id is in them; `include_live` removes
    every run's. Without a reachable Docker engine there is nothing to remove: 0.
    """
    try:
        client = docker_client(timeout=30)
    except SetupError as exc:
        log.debug("docker gc skipped: %s", exc)
        return 0
    try:
        removed = remove_run_resources(
            client, lambda labels: include_live or not _alive(labels, live_run_ids))
    finally:
        client.close()
    for name in removed:
        log.info("docker gc: removed %s", name)
    return len(removed)


def _alive(labels: dict[str, str], live_run_ids: Collection[str] | None) -> bool:
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
    return what


def _docker_subnets(client: DockerClient) -> list[ipaddress.IPv4Network]:
    subnets = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            try:
                subnets.append(ipaddress.IPv4Network(config.get("Subnet", ""), strict=False))
            except ValueError:
                continue  # IPv6 or none
    return subnets


def _ignore_conflict(call: Callable[..., Any], *args: Any) -> None:
    """Docker answers 409 when a container stopped on its own in between: that is fine here."""
    try:
        call(*args)
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise


def _parallel(function: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
    """`function` over `items` in threads (Docker API calls are mostly waiting); results in order."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        return list(pool.map(function, items))
