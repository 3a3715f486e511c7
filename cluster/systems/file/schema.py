"""What a system file becomes once checked: frozen values (the reading is in reader.py)."""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from faultbed.errors import FaultbedError

ROLES = ("peer", "client", "both")
PROTOCOLS = ("json-lines", "http", "process")
DELIVERIES = ("exactly-once", "at-least-once")
DEFAULT_READY_TIMEOUT = 30.0
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
PEER_NAME = re.compile(r"n[1-9][0-9]*")
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

NODE_NAMES = ("node", "nodes", "index", "host", "data_dir", "python", "dir")
LIST_ITEM_NAMES = ("peer", "dial", "identity", "index")
HOST_NAMES = ("address", "node", "nodes", "dir", "python")          # commands run on the host (process client, leader, ready)
OPERATION_NAMES = ("key", "value", "from", "to", "node")


class SystemFileError(FaultbedError):
    """A system file that cannot be used: the message is one line naming file, key and problem."""


@dataclass(frozen=True)
class PeerList:
    """A list of every node (or every other node) rendered with `item` and joined with `separator`."""

    port: str
    item: str
    separator: str
    include_self: bool


@dataclass(frozen=True)
class Bug:
    description: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    client: Mapping[str, Any] = field(default_factory=dict)   # deep-merged into [client]
    client_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ready:
    """How to tell a node is ready: exactly one of tcp, http, command, log."""

    kind: str
    http_path: str = "/"
    http_status: int = 200
    command: tuple[str, ...] = ()
    log: str = ""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    body: Any = None     # a JSON template (table/array/string), or None for no body


@dataclass(frozen=True)
class Leader:
    """Who leads, as a node sees it: one of http, request (json-lines), command."""

    kind: str
    http: HttpRequest | None = None
    request: Mapping[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    field: str = ""
    names: HttpRequest | None = None     # http: id -> node name lookup
    names_list: str = ""
    names_id: str = ""
    names_name: str = ""
    none: tuple[str, ...] = ("", "0")


@dataclass(frozen=True)
class Operation:
    """One http operation: the request to send and how to read the answer."""

    request: HttpRequest
    value: str | None = None         # field path of the result value (reads)
    ok_if: str | None = None         # field path that must be truthy for ok, else fail
    fail_error: str = "cas-mismatch"
    missing_status: tuple[int, ...] = ()   # statuses meaning "no such key": ok, value null


@dataclass(frozen=True)
class Client:
    protocol: str
    port: str
    command: tuple[str, ...] = ()                          # process
    operations: Mapping[str, Operation] = field(default_factory=dict)   # http
    ok_status: tuple[int, ...] = (200,)
    error_field: str = "error"
    message_field: str = "message"
    certain_failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemFile:
    """Everything a system file says, checked."""

    path: str
    name: str
    description: str
    workloads: tuple[str, ...]
    backends: tuple[str, ...] | None
    ready_timeout: float
    delivery: str
    ports: Mapping[str, str]            # name -> role, in file order
    command: tuple[str, ...]
    restart_command: tuple[str, ...]
    env: Mapping[str, str]
    node_files: Mapping[str, tuple[str, int]]   # path under data_dir -> (content template, mode)
    lists: Mapping[str, PeerList]
    ready: Ready
    leader: Leader | None
    client: Client
    client_table: Mapping[str, Any]     # [client] as written, for bug overlays
    bugs: Mapping[str, Bug]
    packages: tuple[str, ...]
    files: Mapping[str, str]            # absolute path in the image -> absolute path on this machine
    data_files: tuple[str, ...] = ()    # globs under the node's data dir: what `corrupt` may damage
    durable: bool = False               # promises acknowledged writes survive a power loss
    raft_trace: str = ""                # its Raft trace, relative to the node's data dir (docs/RAFT-TRACE.md)

    @property
    def directory(self) -> str:
        return os.path.dirname(self.path)

    @property
    def peer_ports(self) -> tuple[str, ...]:
        return tuple(name for name, role in self.ports.items() if role in ("peer", "both"))


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` merged in: tables merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
