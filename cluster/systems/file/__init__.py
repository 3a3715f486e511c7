"""Systems described by a TOML file (docs/WRITING-A-SYSTEM.md): `faultbed run --system ./mykv.toml`.

    schema.py     what a file becomes: frozen values (ports, node, ready, leader, client, bugs, docker)
    reader.py     the file read and checked (one SystemFileError line for anything wrong)
    table.py      typed getters over one TOML table; unknown keys refused
    template.py   placeholders: checked at load, rendered per node or per operation
    command.py    a node's command line from a NodePlan (peer lists, env, restart_command)
    jsonlines.py  the json-lines client (TCP)
    http.py       the http client (a request template per operation)
    process.py    the process client (a program in any language on stdin/stdout)
    probes.py     readiness and leader checks: status() of every file client
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.registry import run_env, run_id_for
from faultbed.cluster.systems import Client, Outcome, SystemTraits
from faultbed.cluster.systems.file import reader, schema
from faultbed.cluster.systems.file.command import node_command
from faultbed.cluster.systems.file.schema import SystemFile, SystemFileError
from faultbed.cluster.systems.file.table import Table


class FileSystem:
    """A System whose every part comes from a system file."""

    def __init__(self, spec: SystemFile) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = spec.description or f"system file {spec.path}"
        self.ports = tuple(spec.ports)
        self.peer_ports = spec.peer_ports
        self.client_port = spec.client.port
        self.bugs: Mapping[str, str] = {name: bug.description for name, bug in spec.bugs.items()}
        self.workloads = spec.workloads
        self.traits = SystemTraits(backends=spec.backends, ready_timeout=spec.ready_timeout, delivery=spec.delivery,
                                   image_packages=spec.packages, image_files=tuple(sorted(spec.files.items())),
                                   data_files=spec.data_files, durable=spec.durable, raft_trace=spec.raft_trace)
        self.path = spec.path
        self._clients: dict[tuple[str, ...], schema.Client] = {(): spec.client}
        self._logs: dict[str, tuple[str, int]] = {}   # node -> its log file and its size at the last start
        self._nodes: tuple[str, ...] = ()
        self._run_env: dict[str, str] = {}   # FAULTBED_RUN and FAULTBED_HARNESS for client programs

    def command(self, plan: NodePlan) -> list[str]:
        # Both backends keep node logs in <run>/nodes/<node>.log next to <run>/data/<node>.
        log = os.path.join(os.path.dirname(os.path.dirname(plan.data_dir)), "nodes", f"{plan.name}.log")
        try:
            size = os.path.getsize(log)
        except OSError:
            size = 0
        self._logs[plan.name] = (log, size)  # [ready] log looks only past this point
        self._nodes = plan.nodes
        run_id = run_id_for(os.path.dirname(os.path.dirname(plan.data_dir)))
        self._run_env = run_env(run_id) if run_id is not None else {}
        return node_command(self.spec, plan)

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = ()) -> Client:
        from faultbed.cluster.systems.file.probes import FileClient

        planted = tuple(bug for bug in bugs if bug in self.spec.bugs)
        return FileClient(self, self.client_spec(planted), self.client_args(planted), address, node, timeout)

    def client_spec(self, planted: tuple[str, ...]) -> schema.Client:
        """[client] with the planted bugs' [bugs.NAME.client] overlays merged in (checked at load)."""
        overlays = tuple(bug for bug in planted if self.spec.bugs[bug].client)
        if overlays not in self._clients:
            table: dict[str, Any] = dict(self.spec.client_table)
            for bug in overlays:
                table = schema.merge(table, self.spec.bugs[bug].client)
            self._clients[overlays] = reader.parse_client(Table(self.spec.path, "client", table),
                                                          self.spec.ports)
        return self._clients[overlays]

    def client_args(self, planted: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(arg for bug in planted for arg in self.spec.bugs[bug].client_args)

    def log_path(self, node: str) -> tuple[str, int] | None:
        """The node's log file and where its current start begins (learnt from its plan)."""
        return self._logs.get(node)

    def known_nodes(self) -> tuple[str, ...]:
        return self._nodes

    def client_env(self) -> dict[str, str]:
        """The run's labels for the client programs it starts (so `faultbed gc` finds them)."""
        return dict(self._run_env)


def load_system_file(path: str) -> FileSystem:
    """The System a system file describes; SystemFileError (one line) when the file is wrong."""
    return FileSystem(reader.load(path))


__all__ = ["FileSystem", "SystemFileError", "load_system_file", "Outcome"]
