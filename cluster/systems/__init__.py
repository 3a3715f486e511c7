"""Systems under test: each module knows its own binary, config, client and bug switches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from faultbed.cluster.backend import NodePlan

OK, FAIL, INFO = "ok", "fail", "info"


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
    """A system under test as the runner and backends see it.

    Optional attributes, read with getattr: `backends` (the backends it can run
    on; all when absent), `ready_timeout` (seconds to wait for readiness, when
    slower than the runner's default), `delivery` ("at-least-once" for a queue
    that may deliver a retried publish twice by design; exactly-once when absent)
    and `with_bugs(bugs) -> System` (for systems whose bug switches live in the
    client rather than the node's command line).
    """

    name: str
    description: str              # one line, shown by `faultbed list`
    ports: tuple[str, ...]        # every port a node listens on, e.g. ("raft", "client")
    peer_ports: tuple[str, ...]   # the ones peers dial, routed through the mesh
    client_port: str
    bugs: Mapping[str, str]       # bug name -> what it breaks
    workloads: tuple[str, ...]

    def command(self, plan: NodePlan) -> list[str]: ...
    def open_client(self, address: tuple[str, int], node: str, timeout: float) -> Client: ...


def load_system(reference: str, bugs: tuple[str, ...] = ()) -> System:
    """The system a name, system file or module:attribute names (bound to `bugs` when its client carries them)."""
    from faultbed import plugins

    system = plugins.system(reference)
    bind = getattr(system, "with_bugs", None)
    return bind(tuple(bugs)) if bind is not None and bugs else system


def ready_timeout(system: System, default: float) -> float:
    """How long to wait for `system` to be ready: its own `ready_timeout`, at least `default`."""
    return max(default, float(getattr(system, "ready_timeout", default)))
