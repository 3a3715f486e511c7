"""The Backend protocol and the data a backend, a system and the mesh share.

A backend knows processes or containers and how nodes are addressed; it does not
know any system. A system knows its binary, config and client; it does not know
which backend runs it. They meet in a `NodePlan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from faultbed.cluster.mesh import Mesh

RUNNING, PAUSED, DEAD = "running", "paused", "dead"


@dataclass(frozen=True)
class Link:
    """One directed Toxiproxy proxy: `src` reaches `dst`'s port `port` only through it."""

    src: str
    dst: str
    port: str
    listen: str    # host:port where the proxy listens (as Toxiproxy binds it)
    upstream: str  # host:port of dst's real port (as Toxiproxy reaches it)

    @property
    def name(self) -> str:
        return f"{self.src}-{self.dst}-{self.port}"


@dataclass(frozen=True)
class NodePlan:
    """Everything a system needs to write one node's command line.

    `identities[peer]` is the address the peer is known by (its Raft id, for
    example); `dial[peer][port]` is where this node connects to reach that peer's
    port: a proxy of the mesh, never the peer itself.
    """

    name: str
    nodes: tuple[str, ...]
    listen_host: str
    ports: dict[str, int]
    identities: dict[str, str]
    dial: dict[str, dict[str, str]]
    data_dir: str
    python: str
    bugs: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


class ProcessControl(Protocol):
    """The five verbs the nemesis uses on nodes (every Backend has them)."""

    def kill(self, node: str) -> None: ...
    def pause(self, node: str) -> None: ...
    def resume(self, node: str) -> None: ...
    def restart(self, node: str) -> None: ...
    def state(self, node: str) -> str: ...


class Backend(ProcessControl, Protocol):
    """Runs one run's nodes (processes or containers), its Toxiproxy and its mesh.

    Constructed as `Backend(system, spec, run_dir, run_id)`; entering the context
    starts Toxiproxy, the mesh and every node (not yet waiting for readiness);
    leaving it stops everything it started, also after an exception or Ctrl-C.
    """

    name: str
    mesh: "Mesh"

    def __enter__(self) -> "Backend": ...
    def __exit__(self, *exc: object) -> None: ...

    def node_names(self) -> list[str]: ...
    def client_address(self, node: str) -> tuple[str, int]: ...
    def log_path(self, node: str) -> str: ...
