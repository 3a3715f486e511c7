"""The inventory of the ssh backend: hosts (address, user, port, key or agent, working directory) and
which node runs on which host, read from a TOML file (docs/REMOTE.md shows one).

    [defaults]                     # optional; any host key may also be set per host
    user = "root"
    key = "~/.ssh/faultbed_ed25519"  # or agent = true: the keys of $SSH_AUTH_SOCK
    known_hosts = "./known_hosts"    # default: ssh's own (~/.ssh/known_hosts)
    workdir = "/var/tmp/faultbed"

    [hosts.h1]
    address = "10.0.0.11"

    [nodes]                        # optional: without it nodes go round-robin over the hosts
    n1 = "h1"

Every mistake is one FaultbedError line naming the file and the key; no password is ever
read from the file (there is no such key).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any

from faultbed.errors import FaultbedError, read_toml

DEFAULT_WORKDIR = "/var/tmp/faultbed"
DEFAULT_MAX_CLOCK_SKEW_MS = 1000.0
HOST_KEYS = {"address", "user", "port", "key", "agent", "known_hosts", "workdir", "python"}
TOP_KEYS = {"defaults", "hosts", "nodes", "max_clock_skew_ms"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Host:
    """One machine as ssh reaches it, and where faultbed keeps a run's files there."""

    name: str
    address: str
    user: str = "root"
    port: int = 22
    key: str | None = None       # a private key file; None: the agent's keys (or ssh's defaults)
    known_hosts: str | None = None
    workdir: str = DEFAULT_WORKDIR
    python: str = "/usr/bin/python3"


@dataclass(frozen=True)
class Inventory:
    path: str
    hosts: dict[str, Host]
    nodes: dict[str, str]        # node -> host name
    max_clock_skew_ms: float = DEFAULT_MAX_CLOCK_SKEW_MS

    def host_of(self, node: str) -> Host:
        return self.hosts[self.nodes[node]]

    def used_hosts(self) -> list[Host]:
        """The hosts that run at least one node, in inventory order."""
        used = set(self.nodes.values())
        return [host for name, host in self.hosts.items() if name in used]

    def nodes_on(self, host: str) -> list[str]:
        return [node for node, on in self.nodes.items() if on == host]


def load_inventory(path: str, nodes: list[str] | tuple[str, ...] | None = None) -> Inventory:
    """The inventory in `path`, with `nodes` mapped to hosts; FaultbedError (one line) for any mistake."""
    where = f"inventory {path}"
    data = read_toml(path, where)
    directory = os.path.dirname(os.path.abspath(path))
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise FaultbedError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(TOP_KEYS))})")
    defaults = _table(data, "defaults", where)
    hosts_table = _table(data, "hosts", where)
    if not hosts_table:
        raise FaultbedError(f"{where}: no [hosts.NAME] table: name at least one host")
    hosts = {name: _host(name, {**defaults, **_table(hosts_table, name, f"{where}: hosts")}, directory, where)
             for name in hosts_table}
    mapping = _nodes(_table(data, "nodes", where), hosts, nodes, where)
    skew = data.get("max_clock_skew_ms", DEFAULT_MAX_CLOCK_SKEW_MS)
    if isinstance(skew, bool) or not isinstance(skew, (int, float)) or not 0 < skew <= 3_600_000:
        raise FaultbedError(f"{where}: max_clock_skew_ms must be a number of milliseconds > 0 and <= 3600000")
    return Inventory(os.path.abspath(path), hosts, mapping, float(skew))


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise FaultbedError(f"{where}: [{key}] must be a table")
    return value


def _host(name: str, values: dict[str, Any], directory: str, where: str) -> Host:
    here = f"{where}: hosts.{name}"
    if not NAME.match(name):
        raise FaultbedError(f"{here}: a host name is letters, digits, '.', '_' or '-'")
    unknown = set(values) - HOST_KEYS
    if unknown:
        raise FaultbedError(f"{here}: unknown key(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(HOST_KEYS))}; passwords are never read from a file)")
    address = values.get("address")
    if not isinstance(address, str) or not address:
        raise FaultbedError(f"{here}: address is missing (an IP address or a host name)")
    if not _valid_address(address):
        raise FaultbedError(f"{here}: address {address[:60]!r} is neither an IP address nor a host name")
    user = values.get("user", "root")
    if not isinstance(user, str) or not re.match(r"^[a-z_][a-z0-9_.-]{0,31}$", user):
        raise FaultbedError(f"{here}: user must be a login name")
    port = values.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise FaultbedError(f"{here}: port must be an integer 1..65535")
    agent = values.get("agent", False)
    if not isinstance(agent, bool):
        raise FaultbedError(f"{here}: agent must be true or false")
    key = values.get("key")
    if key is not None and agent:
        raise FaultbedError(f"{here}: give either key or agent = true, not both")
    if key is not None:
        key = _file(key, directory, f"{here}: key")
    elif agent and not os.environ.get("SSH_AUTH_SOCK"):
        raise FaultbedError(f"{here}: agent = true but SSH_AUTH_SOCK is not set (no ssh-agent)")
    known_hosts = values.get("known_hosts")
    if known_hosts is not None:
        known_hosts = _file(known_hosts, directory, f"{here}: known_hosts")
    workdir = values.get("workdir", DEFAULT_WORKDIR)
    if not isinstance(workdir, str) or not workdir.startswith("/") or ".." in workdir.split("/") \
            or workdir.rstrip("/") in ("", "/tmp", "/var", "/var/tmp", "/home", "/root", "/usr", "/etc"):
        raise FaultbedError(f"{here}: workdir must be an absolute directory of faultbed's own "
                            f"(e.g. {DEFAULT_WORKDIR}), not {str(workdir)[:60]!r}")
    python = values.get("python", "/usr/bin/python3")
    if not isinstance(python, str) or not python.startswith("/"):
        raise FaultbedError(f"{here}: python must be an absolute path")
    return Host(name, address, user, port, key, known_hosts, workdir.rstrip("/"), python)


def _valid_address(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return bool(HOSTNAME.match(address))


def _file(value: Any, directory: str, here: str) -> str:
    if not isinstance(value, str) or not value:
        raise FaultbedError(f"{here} must be a file name")
    path = os.path.join(directory, os.path.expanduser(value))
    if not os.path.isfile(path):
        raise FaultbedError(f"{here}: no such file {path}")
    if not os.access(path, os.R_OK):
        raise FaultbedError(f"{here}: {path} is not readable")
    return path


def _nodes(table: dict[str, Any], hosts: dict[str, Host], nodes: list[str] | tuple[str, ...] | None,
           where: str) -> dict[str, str]:
    names = list(hosts)
    for node, host in table.items():
        if not isinstance(host, str) or host not in hosts:
            raise FaultbedError(f"{where}: nodes.{node} = {str(host)[:40]!r} names no host "
                                f"(hosts: {', '.join(names)})")
    if nodes is None:
        return dict(table)
    if not table:
        return {node: names[i % len(names)] for i, node in enumerate(nodes)}
    missing = [node for node in nodes if node not in table]
    if missing:
        raise FaultbedError(f"{where}: node(s) {', '.join(missing)} mapped to no host ([nodes] names "
                            f"{', '.join(table) or 'none'})")
    return {node: table[node] for node in nodes}
