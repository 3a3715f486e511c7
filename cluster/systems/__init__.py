"""Systems under test: each module knows its own binary, config, client and bug switches.

The System protocol (what the runner, the backends and the pytest plugin ask of a system):

    name, description, ports, peer_ports, client_port, bugs, workloads   plain data
    traits: SystemTraits           what varies between systems, with its defaults here
    command(plan) -> argv          how one node is started (NodePlan carries the bugs too)
    open_client(address, node, timeout, bugs) -> Client
                                   bugs: the run's --bug names, for switches that live in
                                   the client (etcd's serializable-reads); () when none.
                                   A system that declares options (traits.options) is also
                                   given `options=` {name: value} (see SystemOption)

There are no optional members: whatever may differ is in `traits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from faultbed.cluster.backend import NodePlan
from faultbed.errors import FaultbedError

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
    what the docker backend's node image needs beyond faultbed's base (a system file's [docker]);
    `data_files`: glob patterns
    (relative to a node's data directory) of its durable data, what `corrupt` may damage
    (empty: any file); `durable`: it promises that acknowledged writes survive a power loss
    (without that promise, `power-loss` is refused for it); `raft_trace`: where each node
    writes its Raft trace, relative to its data directory (docs/RAFT-TRACE.md; "" for none):
    then every run of it is also checked by raft-invariants; `options`: the choices it offers
    (`--option NAME=VALUE`, see SystemOption); `host_dirs`: host directories the docker backend
    binds read-only into each node container at the same path (a --bin program's).
    """

    backends: tuple[str, ...] | None = None
    ready_timeout: float = READY_TIMEOUT
    delivery: str = EXACTLY_ONCE
    # The docker backend's node image: extra Debian packages, and files copied in
    # as (absolute path in the image, absolute path on this machine).
    image_packages: tuple[str, ...] = ()
    image_files: tuple[tuple[str, str], ...] = ()
    data_files: tuple[str, ...] = ()
    # Host directories the docker backend binds read-only into every node container at the same path
    # (a --bin program and the files beside it).
    host_dirs: tuple[str, ...] = ()
    durable: bool = False
    raft_trace: str = ""
    options: tuple["SystemOption", ...] = ()

    def __post_init__(self) -> None:
        if self.delivery not in DELIVERIES:
            raise ValueError(f"delivery {self.delivery!r} is not one of {', '.join(DELIVERIES)}")
        if self.ready_timeout <= 0:
            raise ValueError("ready_timeout must be positive")


DEFAULT_TRAITS = SystemTraits()


@dataclass(frozen=True)
class SystemOption:
    """A choice a system offers: `--option NAME=VALUE`, VALUE one of `choices` (the first is the default).

    Chosen values are stored in the spec as options["system"][NAME] (so replay repeats them) and
    reach the system on both sides: NodePlan.options["system"] for `command`, and
    `open_client(..., options=...)` with every declared option's value (defaults filled in).
    Only a system that declares options is given the `options` keyword.
    """

    name: str
    choices: tuple[str, ...]
    help: str = ""

    @property
    def default(self) -> str:
        return self.choices[0]

    def describe(self) -> str:
        """`queue-type=quorum|classic-mirrored`, the default first."""
        return f"{self.name}={'|'.join(self.choices)}"


SYSTEM_OPTIONS = "system"  # the key of spec.options (and NodePlan.options) holding the chosen system options


def chosen_options(system: "System", options: Mapping[str, Any]) -> dict[str, str]:
    """Every option `system` declares, with its value in the spec's `options` or its default."""
    given = options.get(SYSTEM_OPTIONS) or {}
    return {option.name: str(given.get(option.name, option.default)) for option in system.traits.options}


def check_options(system: "System", label: str, options: Mapping[str, Any]) -> None:
    """FaultbedError unless every chosen system option is declared by `system` and has a value it offers."""
    given = options.get(SYSTEM_OPTIONS, {})
    if not isinstance(given, Mapping):
        raise FaultbedError(f"spec options[{SYSTEM_OPTIONS!r}] must be a table of NAME: VALUE, not {str(given)[:40]}")
    declared = {option.name: option for option in system.traits.options}
    for name, value in given.items():
        option = declared.get(name)
        if option is None:
            known = ", ".join(o.describe() for o in declared.values()) or "none"
            raise FaultbedError(f"system {label} has no option {str(name)[:40]!r} (its options: {known})")
        if value not in option.choices:
            raise FaultbedError(f"option {name} of system {label} must be one of {', '.join(option.choices)}, "
                                f"not {str(value)[:40]!r}")


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
