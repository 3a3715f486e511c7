"""Systems under test: each module knows its own binary, config, client and bug switches.

The System protocol (what the runner, the backends and the pytest plugin ask of a system):

    name, description, ports, peer_ports, client_port, bugs, workloads   plain data
    traits: SystemTraits           what varies between systems, with its defaults here
    command(plan) -> argv          how one node is started (NodePlan carries the bugs too)
    open_client(address, node, timeout, bugs) -> Client
                                   bugs: the run's --bug names, for switches that live in
                                   the client (etcd's serializable-reads); () when none

There are no optional members: whatever may differ is in `traits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from faultbed.cluster.backend import NodePlan

OK, FAIL, INFO = "ok", "fail", "info"
EXACTLY_ONCE, AT_LEAST_ONCE = "exactly-once", "at-least-once"
DELIVERIES = (EXACTLY_ONCE, AT_LEAST_ONCE)
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class SystemTraits:
    """What may differ between systems, with the defaults in one place.

    `backends`: the backends it runs on (None: all); `ready_timeout`: seconds to wait for
    readiness (the runner waits at least its own default); `delivery`: "at-least-once" for a
    queue that may deliver a retried publish twice by design; `image_packages`, `image_files`:
    what the docker backend's node image needs beyond faultbed's base (a system file's [docker]).
    queue that may deliver a retried publish twice by design; `data_files`: glob patterns
    (relative to a node's data directory) of its durable data, what `corrupt` may damage
    (empty: any file); `durable`: it promises that acknowledged writes survive a power loss
    (without that promise, `power-loss` is refused for it); `raft_trace`: where each node
    writes its Raft trace, relative to its data directory (docs/RAFT-TRACE.md; "" for none):
    then every run of it is also checked by raft-invariants.
    """

    backends: tuple[str, ...] | None = None
    ready_timeout: float = READY_TIMEOUT
    delivery: str = EXACTLY_ONCE
    # The docker backend's node image: extra Debian packages, and files copied in
    # as (absolute path in the image, absolute path on this machine).
    image_packages: tuple[str, ...] = ()
    image_files: tuple[tuple[str, str], ...] = ()
    data_files: tuple[str, ...] = ()
    durable: bool = False
    raft_trace: str = ""

    def __post_init__(self) -> None:
        if self.delivery not in DELIVERIES:
            raise ValueError(f"delivery {self.delivery!r} is not one of {', '.join(DELIVERIES)}")
        if self.ready_timeout <= 0:
            raise ValueError("ready_timeout must be positive")


DEFAULT_TRAITS = SystemTraits()


@dataclass(frozen=True)
class Outcome:
    """A client's answer: ok (took effect), fail (certainly did not), info (unknown)."""

    type: str
    value: Any = None
    error: str | None = None
    node: str | None = None


class Client(Protocol):
    """One connection to one node. `invoke` never raises for a network problem: it returns info."""

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome: ...
    def status(self, timeout: float) -> dict[str, Any]: ...
    def close(self) -> None: ...


class System(Protocol):
    """A system under test as the runner and backends see it (see the module docstring)."""

    name: str
    description: str              # one line, shown by `faultbed list`
    ports: tuple[str, ...]        # every port a node listens on, e.g. ("raft", "client")
    peer_ports: tuple[str, ...]   # the ones peers dial, routed through the mesh
    client_port: str
    bugs: Mapping[str, str]       # bug name -> what it breaks
    workloads: tuple[str, ...]
    traits: SystemTraits

    def command(self, plan: NodePlan) -> list[str]: ...
    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...]) -> Client: ...


def load_system(reference: str) -> System:
    """The system a name, system file or module:attribute names."""
    from faultbed import plugins

    return plugins.system(reference)


def ready_timeout(system: System, default: float = READY_TIMEOUT) -> float:
    """How long to wait for `system` to be ready: its traits' `ready_timeout`, at least `default`."""
    return max(default, system.traits.ready_timeout)
