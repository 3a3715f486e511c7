"""Hosts to test the ssh backend on, made on this machine: containers with an sshd on a private network.

    with TestHosts(3) as hosts:          # h1, h2, h3 at 10.213.x.2, .3, .4, each with its own sshd
        hosts.inventory_path             # a hosts.toml naming them, their key and their known_hosts
        hosts.write_inventory({"n1": "h1", ...}, path=...)   # the same with a [nodes] mapping
        hosts.exec("h2", ["ss", "-tn"])  # look inside a host without ssh (docker exec)

    with TestHosts(2, mounts={CHECKOUT: CHECKOUT}) as hosts:   # a directory of this machine on every host,
        ...                                                     # read-only (a checkout to run a suite from)

Each host is a container of faultbed/sshhost (faultbed's base image plus openssh-server, built
by `docker/build --ssh-host` without a registry), alone with the others on a bridge network of
the project's own (a /26 of FAULTBED_DOCKER_POOL, masquerading off: no way out), root login by
key only. The image also holds what a host needs to run a chaos suite of its own (pytest, pytest-xdist,
rich: docs/REMOTE.md, "Campaigns across machines"). A client key and one host key are generated per TestHosts (ssh-keygen), so the
inventory's known_hosts pins them. Containers and the network carry faultbed.run and
faultbed.harness labels: `faultbed gc` removes those of a crashed harness.

`python -m faultbed.cluster.ssh.testhosts N DIR` keeps N hosts up (inventory in DIR/hosts.toml)
until Ctrl-C.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from typing import Mapping

from docker.client import DockerClient
from docker.models.containers import Container

from faultbed.cluster.docker.engine import LABEL_HARNESS, LABEL_ROLE, LABEL_RUN, docker_client, parallel
from faultbed.cluster.docker.gc import remove_run_resources
from faultbed.cluster.docker.images import BUILD_SCRIPT
from faultbed.cluster.docker.network import create_network, hosts as subnet_hosts
from faultbed.cluster.registry import process_start_time
from faultbed.cluster.ssh.connection import SSH, diagnose, ssh_options
from faultbed.cluster.ssh.inventory import Host
from faultbed.errors import SetupError

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0  # a loaded machine starts containers and sshds slowly
FIRST_HOST = 2            # .1 is the bridge (this machine); hosts from .2
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
SSHD = ["sh", "-c", 'mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -o "ListenAddress=$1" '
        f'-o HostKey={HOST_KEY} -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no '
        '-o PermitRootLogin=prohibit-password -o UseDNS=no -o MaxSessions=100 -o MaxStartups=100', "sh"]


def ssh_host_image() -> str:
    """The test host image's tag, built first when it is missing (docker/build --ssh-host)."""
    try:
        result = subprocess.run([BUILD_SCRIPT, "--ssh-host"], capture_output=True, timeout=1800,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"cannot build the ssh test host image with {BUILD_SCRIPT}: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.decode(errors="replace").strip().splitlines() or ["(no output)"])[-1]
        raise SetupError(f"building the ssh test host image failed: {last}")
    return result.stdout.decode().strip().splitlines()[-1]


class TestHosts:
    """N hosts with their own addresses and sshds; a context manager that removes them all."""

    __test__ = False  # not a pytest test class

    def __init__(self, count: int, directory: str | None = None, prefix: str = "h",
                 mounts: Mapping[str, str] | None = None) -> None:
        if not 1 <= count <= 50:
            raise SetupError("TestHosts makes 1 to 50 hosts")
        self.count = count
        self.mounts = dict(mounts or {})  # a directory here -> where every host sees it, read-only
        self.run_id = "hosts-" + uuid.uuid4().hex[:10]
        self.names = [f"{prefix}{i}" for i in range(1, count + 1)]
        self.labels = {LABEL_RUN: self.run_id, LABEL_HARNESS: f"{os.getpid()}:{process_start_time(os.getpid())}"}
        self._own_directory = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="faultbed-hosts-")
        os.makedirs(self.directory, exist_ok=True)
        self.key = os.path.join(self.directory, "id_ed25519")
        self.known_hosts = os.path.join(self.directory, "known_hosts")
        self.inventory_path = os.path.join(self.directory, "hosts.toml")
        self.addresses: dict[str, str] = {}
        self.subnet: ipaddress.IPv4Network | None = None
        self._client: DockerClient | None = None
        self._containers: dict[str, Container] = {}

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "TestHosts":
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            remove_run_resources(self._client, lambda labels: True, self.run_id)
            self._client.close()
            self._client = None
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _start(self) -> None:
        image = ssh_host_image()
        self._client = client = docker_client()
        host_key = os.path.join(self.directory, "host_ed25519")
        for path, comment in ((self.key, "faultbed-test-client"), (host_key, "faultbed-test-host")):
            for old in (path, path + ".pub"):
                if os.path.exists(old):
                    os.unlink(old)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                           check=True, capture_output=True, timeout=30)
        network = f"faultbed-{self.run_id}"
        self.subnet = create_network(client, network, {**self.labels, LABEL_ROLE: "ssh-hosts-network"})
        addresses = subnet_hosts(self.subnet)
        self.addresses = {name: addresses[FIRST_HOST + i] for i, name in enumerate(self.names)}
        files = self._host_files(host_key)
        parallel(lambda name: self._create(name, image, network, files), self.names)
        with open(host_key + ".pub", encoding="ascii") as fh:
            public = " ".join(fh.read().split()[:2])
        with open(self.known_hosts, "w", encoding="ascii") as fh:
            fh.writelines(f"{address} {public}\n" for address in self.addresses.values())
        self.write_inventory()
        self._wait_ready()
        log.info("test hosts %s up: %s", self.run_id, ", ".join(f"{n}={a}" for n, a in self.addresses.items()))

    def _host_files(self, host_key: str) -> bytes:
        """A tar of the files every host gets: root's authorized_keys and the host key pair."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            def add(name: str, source: str, mode: int) -> None:
                with open(source, "rb") as fh:
                    data = fh.read()
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
            directory = tarfile.TarInfo("root/.ssh")
            directory.type, directory.mode = tarfile.DIRTYPE, 0o700
            tar.addfile(directory)
            add("root/.ssh/authorized_keys", self.key + ".pub", 0o600)
            add(HOST_KEY.lstrip("/"), host_key, 0o600)
            add(HOST_KEY.lstrip("/") + ".pub", host_key + ".pub", 0o644)
        return buffer.getvalue()

    def _create(self, name: str, image: str, network: str, files: bytes) -> None:
        assert self._client is not None
        api = self._client.api
        address = self.addresses[name]
        created = api.create_container(
            image, command=SSHD + [address], name=f"faultbed-{self.run_id}-{name}", hostname=name,
            labels={**self.labels, LABEL_ROLE: f"ssh-host-{name}"},
            host_config=api.create_host_config(
                init=True, binds={source: {"bind": target, "mode": "ro"} for source, target in self.mounts.items()}),
            networking_config=api.create_networking_config(
                {network: api.create_endpoint_config(ipv4_address=address)}))
        container = self._client.containers.get(created["Id"])
        container.put_archive("/", files)
        container.start()
        self._containers[name] = container

    def _wait_ready(self) -> None:
        """Until every sshd takes our key (a real login running `true`)."""
        deadline = time.monotonic() + READY_TIMEOUT
        for name in self.names:
            host = self.host(name)
            while True:
                try:
                    result = subprocess.run([SSH, *ssh_options(host), host.address, "true"], capture_output=True,
                                            stdin=subprocess.DEVNULL, timeout=60)
                    if result.returncode == 0:
                        break
                    error = diagnose(result.stderr.decode(errors="replace"))
                except subprocess.TimeoutExpired:
                    error = "ssh did not finish within 60s"
                if time.monotonic() > deadline:
                    raise SetupError(f"test host {name} ({host.address}): sshd not ready within "
                                     f"{READY_TIMEOUT:.0f}s: {error}")
                time.sleep(0.1)

    # -- what tests use ----------------------------------------------------------------
    def host(self, name: str) -> Host:
        """The Host the ssh backend would reach `name` as."""
        return Host(name, self.addresses[name], "root", 22, self.key, self.known_hosts)

    def write_inventory(self, nodes: Mapping[str, str] | None = None, path: str | None = None,
                        hosts: list[str] | None = None, extra: str = "") -> str:
        """A hosts.toml for these hosts (all, or `hosts`), with an optional [nodes] mapping; its path."""
        lines = ["# faultbed test hosts (cluster/ssh/testhosts.py)", "[defaults]", 'user = "root"',
                 f'key = "{self.key}"', f'known_hosts = "{self.known_hosts}"', ""]
        for name in hosts or self.names:
            lines += [f"[hosts.{name}]", f'address = "{self.addresses[name]}"', ""]
        if nodes:
            lines += ["[nodes]"] + [f'{node} = "{host}"' for node, host in nodes.items()]
        text = extra + "\n" + "\n".join(lines) + "\n" if extra else "\n".join(lines) + "\n"
        path = path or self.inventory_path
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def container(self, name: str) -> Container:
        return self._containers[name]

    def exec(self, name: str, argv: list[str]) -> tuple[int, str]:
        """Run `argv` inside host `name` (docker exec, not ssh): exit code and output."""
        code, output = self._containers[name].exec_run(argv)
        return int(code), output.decode(errors="replace")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    """`python -m faultbed.cluster.ssh.testhosts N DIR`: N hosts until Ctrl-C or SIGTERM."""
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: python -m faultbed.cluster.ssh.testhosts N DIR", file=sys.stderr)
        return 3
    logging.basicConfig(level=logging.INFO, format="testhosts: %(message)s")
    for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell's background job starts with it ignored
        signal.signal(signum, _interrupt)
    try:
        with TestHosts(int(argv[0]), os.path.abspath(argv[1])) as hosts:
            print(f"{hosts.count} hosts up; inventory: {hosts.inventory_path} (Ctrl-C removes them)", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    except SetupError as exc:
        print(f"testhosts: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
