"""A node's command line from its system file and NodePlan: placeholders, peer lists, env, restarts.

Config files ([node.files]) are rendered into the node's data directory before it starts.
Environment variables are passed with `env NAME=VALUE ...` and `restart_command` is chosen
by a small `sh` wrapper (a marker file in the data directory says the node has started
before), so both work the same on every backend without the backend knowing.
"""

from __future__ import annotations

import os
from typing import Any

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems.file import template
from faultbed.cluster.systems.file.schema import SystemFile
from faultbed.errors import SetupError

ENV = "/usr/bin/env"
SH = "/bin/sh"
STARTED_MARKER = ".faultbed-started"
# $1 marker, $2 how many words the first command has, then both commands; runs the first
# on the first start (creating the marker), the second on every later one.
RESTART_WRAPPER = ('m=$1; n=$2; shift 2; '
                   'if [ -e "$m" ]; then shift "$n"; exec "$@"; fi; '
                   ': >"$m"; i=0; for a do if [ "$i" -lt "$n" ]; then set -- "$@" "$a"; fi; '
                   'shift; i=$((i+1)); done; exec "$@"')


def node_values(spec: SystemFile, plan: NodePlan) -> dict[str, Any]:
    """Every placeholder a node command may use, for this node."""
    index = plan.nodes.index(plan.name) + 1
    values: dict[str, Any] = {
        "node": plan.name, "nodes": ",".join(plan.nodes), "index": index, "host": plan.listen_host,
        "data_dir": plan.data_dir, "python": plan.python, "dir": spec.directory,
    }
    for port, number in plan.ports.items():
        values[f"port.{port}"] = number
    for peer in plan.nodes:
        values[f"identity.{peer}"] = plan.identities.get(peer, "")
        for port in spec.peer_ports:
            values[f"dial.{peer}.{port}"] = dial(spec, plan, peer, port)
    for name, peer_list in spec.lists.items():
        items = []
        for i, peer in enumerate(plan.nodes, 1):
            if peer == plan.name and not peer_list.include_self:
                continue
            items.append(str(template.render(peer_list.item, {
                "peer": peer, "index": i, "identity": plan.identities.get(peer, ""),
                "dial": dial(spec, plan, peer, peer_list.port)})))
        values[f"list.{name}"] = peer_list.separator.join(items)
    return values


def dial(spec: SystemFile, plan: NodePlan, peer: str, port: str) -> str:
    """Where `plan`'s node reaches `peer`'s `port`: through the mesh; itself at its own address."""
    if peer != plan.name:
        address = plan.dial.get(peer, {}).get(port)
        if address is None:
            return f"{peer}:{plan.ports[port]}"  # not a peer port: no proxy (same ports everywhere on docker)
        return address
    identity_port = spec.peer_ports[0] if spec.peer_ports else spec.client.port
    if port == identity_port and plan.name in plan.identities:
        return plan.identities[plan.name]
    host = "127.0.0.1" if plan.listen_host in ("0.0.0.0", "") else plan.listen_host
    return f"{host}:{plan.ports[port]}"


def node_command(spec: SystemFile, plan: NodePlan) -> list[str]:
    """The argument list that starts `plan`'s node (with its planted bugs)."""
    for name in _peers_named(spec):
        if name not in plan.nodes:
            raise SetupError(f"{spec.path}: node.command names {name}, but the cluster has only "
                             f"{', '.join(plan.nodes)} (--nodes)")
    values = node_values(spec, plan)
    write_node_files(spec, plan, values)
    bugs = [spec.bugs[name] for name in plan.bugs if name in spec.bugs]
    command = [_resolve(spec, str(template.render(text, values))) for text in spec.command]
    command += [str(template.render(text, values)) for bug in bugs for text in bug.args]
    env = {name: str(template.render(text, values)) for name, text in spec.env.items()}
    for bug in bugs:
        env.update({name: str(template.render(text, values)) for name, text in bug.env.items()})
    if spec.restart_command:
        restart = [_resolve(spec, str(template.render(text, values))) for text in spec.restart_command]
        restart += [str(template.render(text, values)) for bug in bugs for text in bug.args]
        marker = os.path.join(plan.data_dir, STARTED_MARKER)
        command = [SH, "-c", RESTART_WRAPPER, "sh", marker, str(len(command)), *command, *restart]
    if env:
        command = [ENV, *(f"{name}={value}" for name, value in sorted(env.items())), *command]
    return command


def write_node_files(spec: SystemFile, plan: NodePlan, values: dict[str, Any]) -> None:
    """[node.files] rendered into the node's data directory (bind-mounted at the same path on docker)."""
    for name, (content, mode) in spec.node_files.items():
        path = os.path.join(plan.data_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.chmod(path, 0o600)  # a read-only file from the previous start is rewritten
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(str(template.render(content, values)))
        os.chmod(path, mode)


def _resolve(spec: SystemFile, program: str) -> str:
    """A program written ./x or ../x is relative to the system file's directory."""
    if program.startswith(("./", "../")):
        return os.path.normpath(os.path.join(spec.directory, program))
    return program


def _peers_named(spec: SystemFile) -> set[str]:
    names = set()
    for bug_args in [spec.command, spec.restart_command, tuple(spec.env.values())]:
        for text in bug_args:
            for placeholder in template.placeholders(text):
                head, _, rest = placeholder.name.partition(".")
                if head in ("dial", "identity"):
                    names.add(rest.partition(".")[0])
    return names
