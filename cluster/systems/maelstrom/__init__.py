"""maelstrom: any program that speaks Maelstrom's protocol, run as a real cluster (`faultbed run --bin`).

    protocol.py   the wire format (one JSON message per line) and Maelstrom's error codes
    router.py     the per-node router process: runs the program, carries its messages over TCP
                  through the mesh, answers the workers' clients
    client.py     the client the workers use (a Maelstrom client id per connection)
    services.py   lin-kv, seq-kv and lww-kv, hosted in the first node's router

Each node is a router process (its ports: `peer`, dialled by the other routers through the
mesh, and `client`) whose child is the user's program. The workload is also the codec the
client speaks (faultbed/workloads/maelstrom.py), so a run's system is bound to its spec by
`for_spec` when the plan is resolved.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace
from typing import Any, Mapping

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems import SystemTraits
from faultbed.cluster.systems.maelstrom.client import Codec, MaelstromClient
from faultbed.errors import FaultbedError

NAME = "maelstrom"
WORKLOADS = ("echo", "unique-ids", "broadcast", "g-set", "g-counter", "pn-counter", "lin-kv")


class MaelstromSystem:
    """The System the runner and backends see; `codec` is the run's workload (None until bound)."""

    name = NAME
    description = "a Maelstrom-protocol program of your own (--bin PATH), one router per node"
    ports: tuple[str, ...] = ("peer", "client")
    peer_ports: tuple[str, ...] = ("peer",)
    client_port = "client"
    bugs: Mapping[str, str] = {}
    workloads: tuple[str, ...] = WORKLOADS
    traits = SystemTraits(ready_timeout=60.0)  # the router waits up to 20 s for init_ok

    def __init__(self, codec: Codec | None = None, program: str | None = None) -> None:
        self.codec = codec
        if program:  # the docker backend binds the program's directory into every node container
            self.traits = replace(self.traits, host_dirs=(os.path.dirname(os.path.abspath(program)),))

    def command(self, plan: NodePlan) -> list[str]:
        config = json.dumps(asdict(plan), separators=(",", ":"), sort_keys=True)
        return [plan.python, "-m", "faultbed.cluster.systems.maelstrom.router", "--config", config]

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = ()) -> MaelstromClient:
        return MaelstromClient(address, node, timeout, self.codec)


def check_program(options: Mapping[str, Any]) -> None:
    """The --bin program exists and is executable (FaultbedError in one line otherwise)."""
    program = options.get("bin")
    if not isinstance(program, str) or not program:
        raise FaultbedError("the maelstrom system runs a program of yours: give it with --bin PATH")
    args = options.get("bin_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise FaultbedError("--bin-arg values must be strings")
    if not os.path.exists(program):
        raise FaultbedError(f"--bin {program}: no such file")
    if os.path.isdir(program) or not os.access(program, os.X_OK):
        raise FaultbedError(f"--bin {program}: not an executable file")


def spec_fields(program: str, args: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The TestSpec fields of `--bin PROGRAM --bin-arg A...`: the path made absolute (or found on
    $PATH when it names no directory), so replay finds it from anywhere."""
    found = program
    if "/" not in program and not os.path.exists(program):
        found = shutil.which(program) or program
    elif os.path.exists(program):
        found = os.path.abspath(program)
    return {"system": NAME, "options": {"bin": found, "bin_args": [str(a) for a in args]}}


def for_spec(spec: Any, workload: Any) -> MaelstromSystem:
    """The maelstrom system of one run: its program checked, its client speaking `workload`."""
    check_program(spec.options if isinstance(spec.options, dict) else {})
    return MaelstromSystem(workload if hasattr(workload, "request") else None, spec.options["bin"])


SYSTEM = MaelstromSystem()
