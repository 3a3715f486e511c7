"""A system file read and checked: TOML -> schema values, or one SystemFileError line.

Every key is known (a typo is an error), every type checked, every placeholder and
port name resolved here, so that nothing starts from a file that cannot run.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from typing import Any, Callable, Mapping

from faultbed.cluster.systems.file import template
from faultbed.cluster.systems.file.schema import (
    DEBIAN_PACKAGE, DEFAULT_READY_TIMEOUT, DELIVERIES, ENV_NAME, HOST_NAMES, HTTP_METHODS, LIST_ITEM_NAMES, NAME,
    NODE_NAMES, OPERATION_NAMES, PEER_NAME, PROTOCOLS, ROLES, Bug, Client, HttpRequest, Leader, Operation, PeerList,
    Ready, SystemFile, SystemFileError, merge)
from faultbed.cluster.systems.file.table import Table
from faultbed.errors import read_toml


def load(path: str) -> SystemFile:
    """Read and check the system file at `path`; SystemFileError (one line) for anything wrong."""
    path = os.path.abspath(path)
    data = read_toml(path, path, SystemFileError, "no such system file")
    return _parse(path, Table(path, "", data))


def _parse(path: str, top: Table) -> SystemFile:
    from faultbed import plugins

    name = top.text("name", required=True)
    if not NAME.fullmatch(name):
        top.fail("name", f"{name!r} must be lowercase letters, digits and '-'")
    description = top.text("description", default="")
    if "\n" in description:
        top.fail("description", "must be one line")
    workloads = top.strings("workloads", required=True, nonempty=True)
    known = plugins.names("workloads")
    for workload in workloads:
        if workload not in known:
            top.fail("workloads", f"unknown workload {workload!r} (known: {', '.join(known)})")
    backends = top.strings("backends", nonempty=True) if top.has("backends") else None
    for backend in backends or ():
        if backend not in plugins.names("backends"):
            top.fail("backends", f"unknown backend {backend!r} (known: {', '.join(plugins.names('backends'))})")
    delivery = top.text("delivery", default="exactly-once")
    if delivery not in DELIVERIES:
        top.fail("delivery", f"{delivery!r} is not one of {', '.join(DELIVERIES)}")
    ports = _ports(top)
    lists = _lists(top, ports)
    node = top.table("node", required=True)
    assert node is not None
    command, restart, env, node_files = _node(node, ports, lists)
    ready_table = top.table("ready")
    ready, ready_timeout = _ready(ready_table, ports) if ready_table else (Ready("tcp"), None)
    top_timeout = top.number("ready_timeout")
    client_table = top.table("client", required=True)
    assert client_table is not None
    raw_client = copy.deepcopy(client_table.data)
    client = parse_client(client_table, ports)
    leader_table = top.table("leader")
    leader = _leader(leader_table, client) if leader_table else None
    bugs = _bugs(top, ports, lists, raw_client)
    packages, files = _docker(top, os.path.dirname(path))
    data_files = top.strings("data_files")
    durable = top.get("durable", bool, False)
    raft_trace = _raft_trace(top)
    top.done()
    return SystemFile(
        path=path, name=name, description=description, workloads=workloads, backends=backends,
        ready_timeout=top_timeout or ready_timeout or DEFAULT_READY_TIMEOUT, delivery=delivery, ports=ports,
        command=command, restart_command=restart, env=env, node_files=node_files, lists=lists, ready=ready, leader=leader,
        client=client, client_table=raw_client, bugs=bugs, packages=packages, files=files,
        data_files=data_files, durable=bool(durable), raft_trace=raft_trace)


def _raft_trace(top: Table) -> str:
    """`raft_trace`: where a node writes its Raft trace, a relative path inside its data directory."""
    trace = top.text("raft_trace", default="")
    if top.has("raft_trace") and (not trace or os.path.isabs(trace) or os.pardir in trace.split("/")
                                  or "\n" in trace):
        top.fail("raft_trace", f"{trace[:60]!r} must be a relative path inside the node's data directory")
    return os.path.normpath(trace) if trace else ""


def _ports(top: Table) -> dict[str, str]:
    table = top.table("ports", required=True)
    assert table is not None
    if not table.data:
        table.fail("ports", "must name at least one port")
    for port, role in table.data.items():
        if not NAME.fullmatch(port):
            table.fail(table.key(port), "a port name must be lowercase letters, digits and '-'")
        if role not in ROLES:
            table.fail(table.key(port), f"role {role!r} is not one of {', '.join(ROLES)}")
    table.used.update(table.data)
    if not any(role in ("client", "both") for role in table.data.values()):
        table.fail("ports", "no port has the role client (or both): clients could not reach a node")
    return dict(table.data)


def _lists(top: Table, ports: Mapping[str, str]) -> dict[str, PeerList]:
    node = top.data.get("node")
    if not isinstance(node, dict) or "lists" not in node:
        return {}
    tables = Table(top.path, "node.lists", node["lists"])
    peer_ports = [name for name, role in ports.items() if role in ("peer", "both")]
    lists = {}
    for name in tables.data:
        item = tables.table(name)
        assert item is not None
        port = item.text("port", default=peer_ports[0] if peer_ports else None)
        if port is None:
            item.fail(item.key("port"), "missing (required: no port has the role peer)")
        if port not in ports:
            item.fail(item.key("port"), f"undeclared port {port!r} (declared: {', '.join(ports)})")
        text = item.text("item", required=True)
        _check(item, "item", text, lambda n: n in LIST_ITEM_NAMES, ", ".join(LIST_ITEM_NAMES))
        lists[name] = PeerList(port, text, item.text("separator", default=","),
                               item.get("include_self", bool, False))
        item.done()
    tables.done()
    return lists


def node_names_allowed(ports: Mapping[str, str], lists: Mapping[str, PeerList]) -> Callable[[str], bool]:
    """Which placeholder names a node command may use."""
    peer_ports = {name for name, role in ports.items() if role in ("peer", "both")}

    def allowed(name: str) -> bool:
        head, _, rest = name.partition(".")
        if name in NODE_NAMES:
            return True
        if head == "port":
            return rest in ports
        if head == "list":
            return rest in lists
        if head == "identity":
            return bool(PEER_NAME.fullmatch(rest))
        if head == "dial":
            peer, _, port = rest.partition(".")
            return bool(PEER_NAME.fullmatch(peer)) and port in peer_ports
        return False
    return allowed


NODE_DESCRIBE = ("node, nodes, index, host, data_dir, python, dir, port.NAME, dial.nK.PORT (a peer port), "
                 "identity.nK, list.NAME")


def _node(node: Table, ports: Mapping[str, str], lists: Mapping[str, PeerList],
          ) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str], dict[str, tuple[str, int]]]:
    allowed = node_names_allowed(ports, lists)
    command = node.strings("command", required=True, nonempty=True)
    restart = node.strings("restart_command", nonempty=True) if node.has("restart_command") else ()
    env = node.string_map("env")
    for key, texts in (("command", command), ("restart_command", restart)):
        for text in texts:
            _check(node, key, text, allowed, NODE_DESCRIBE)
    for name, text in env.items():
        if not ENV_NAME.fullmatch(name):
            node.fail(node.key(f"env.{name}"), "not a valid environment variable name")
        _check(node, f"env.{name}", text, allowed, NODE_DESCRIBE)
    files = _node_files(node, allowed)
    node.used.add("lists")
    node.done()
    return command, restart, env, files


def _node_files(node: Table, allowed: Callable[[str], bool]) -> dict[str, tuple[str, int]]:
    """[node.files]: config files written into each node's data directory before it starts."""
    table = node.table("files")
    if table is None:
        return {}
    files = {}
    for name, value in table.data.items():
        key = f"node.files.{name}"
        parts = name.split("/")
        if os.path.isabs(name) or ".." in parts or not name:
            table.fail(key, "must be a relative path inside the node's data directory")
        if isinstance(value, str):
            content, mode = value, 0o644
        else:
            entry = Table(table.path, key, value)
            content = entry.text("content", required=True)
            mode_text = entry.text("mode", default="0644")
            if not re.fullmatch(r"0?[0-7]{3}", mode_text):
                entry.fail(entry.key("mode"), f"{mode_text!r} is not an octal file mode like \"0600\"")
            mode = int(mode_text, 8)
            entry.done()
        _check(table, name, content, allowed, NODE_DESCRIBE)
        files[name] = (content, mode)
    table.used.update(table.data)
    return files


def _ready(table: Table, ports: Mapping[str, str]) -> tuple[Ready, float | None]:
    kinds = [kind for kind in ("tcp", "http", "command", "log") if table.has(kind)]
    if len(kinds) != 1:
        table.fail("ready", "needs exactly one of tcp, http, command, log"
                   + (f" (has {', '.join(kinds)})" if kinds else ""))
    kind = kinds[0]
    timeout = table.number("timeout")
    if kind == "tcp":
        if table.get("tcp", bool) is not True:
            table.fail("ready.tcp", "must be true (a TCP connect to the client port)")
        ready = Ready("tcp")
    elif kind == "http":
        http = table.table("http")
        assert http is not None
        path = http.text("path", default="/")
        if not path.startswith("/"):
            http.fail(http.key("path"), f"{path!r} must start with /")
        status = http.get("status", int, 200)
        http.done()
        ready = Ready("http", http_path=path, http_status=status)
    elif kind == "command":
        command = table.strings("command", nonempty=True)
        for text in command:
            _check(table, "command", text, lambda n: n in HOST_NAMES, ", ".join(HOST_NAMES))
        ready = Ready("command", command=command)
    else:
        pattern = table.text("log")
        try:
            re.compile(pattern)
        except re.error as exc:
            table.fail("ready.log", f"not a valid regular expression: {exc}")
        ready = Ready("log", log=pattern)
    table.done()
    return ready, timeout


def _http_request(table: Table, names: tuple[str, ...], default_method: str = "GET") -> HttpRequest:
    method = table.text("method", default=default_method).upper()
    if method not in HTTP_METHODS:
        table.fail(table.key("method"), f"{method!r} is not one of {', '.join(HTTP_METHODS)}")
    path = table.text("path", required=True)
    if not path.startswith("/"):
        table.fail(table.key("path"), f"{path!r} must start with /")
    _check(table, "path", path, lambda n: n in names, ", ".join(names))
    body = table.get("body", (dict, list, str), None)
    for text in template.tree_strings(body):
        _check(table, "body", text, lambda n: n in names, ", ".join(names))
    return HttpRequest(method, path, body)


def parse_client(table: Table, ports: Mapping[str, str]) -> Client:
    """[client] (or a bug's overlay merged into it) checked."""
    protocol = table.text("protocol", required=True)
    if protocol not in PROTOCOLS:
        table.fail(table.key("protocol"), f"unknown client protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    client_ports = [name for name, role in ports.items() if role in ("client", "both")]
    port = table.text("port", default=client_ports[0] if len(client_ports) == 1 else None)
    if port is None:
        table.fail(table.key("port"), f"missing: several client ports ({', '.join(client_ports)}), say which")
    if port not in ports:
        table.fail(table.key("port"), f"undeclared port {port!r} (declared: {', '.join(ports)})")
    if ports[port] == "peer":
        table.fail(table.key("port"), f"port {port!r} has the role peer, not client")
    client = Client(protocol, port)
    if protocol == "process":
        command = table.strings("command", required=True, nonempty=True)
        for text in command:
            _check(table, "command", text, lambda n: n in HOST_NAMES, ", ".join(HOST_NAMES))
        _check_program(table, "command", command[0])
        client = Client(protocol, port, command=command)
    elif protocol == "http":
        operations_table = table.table("operations", required=True)
        assert operations_table is not None
        operations = {}
        for f in operations_table.data:
            op = operations_table.table(f)
            assert op is not None
            request = _http_request(op, OPERATION_NAMES, "POST")
            value = op.text("value")
            ok_if = op.text("ok_if")
            for key, path in (("value", value), ("ok_if", ok_if)):
                if path is not None:
                    try:
                        template.check_path(path)
                    except template.TemplateError as exc:
                        op.fail(op.key(key), str(exc))
            missing = op.get("missing_status", list, [])
            if not all(isinstance(code, int) and not isinstance(code, bool) for code in missing):
                op.fail(op.key("missing_status"), "must be a list of HTTP status codes")
            operations[f] = Operation(request, value, ok_if, op.text("fail_error", default="cas-mismatch"),
                                      tuple(missing))
            op.done()
        operations_table.done()
        if not operations:
            operations_table.fail("client.operations", "must describe at least one operation")
        statuses = table.get("ok_status", list, [200])
        if not statuses or not all(isinstance(s, int) and not isinstance(s, bool) for s in statuses):
            table.fail(table.key("ok_status"), "must be a non-empty list of HTTP status codes")
        client = Client(protocol, port, operations=operations, ok_status=tuple(statuses),
                        error_field=table.text("error_field", default="error"),
                        message_field=table.text("message_field", default="message"),
                        certain_failures=table.strings("certain_failures"))
    table.done()
    return client


def _leader(table: Table, client: Client) -> Leader:
    kinds = [kind for kind in ("http", "request", "command") if table.has(kind)]
    if len(kinds) != 1:
        table.fail("leader", "needs exactly one of http, request, command"
                   + (f" (has {', '.join(kinds)})" if kinds else ""))
    kind = kinds[0]
    none = table.strings("none") if table.has("none") else ("", "0")
    field_path = table.text("field", required=kind != "command", default="")
    if field_path:
        try:
            template.check_path(field_path)
        except template.TemplateError as exc:
            table.fail("leader.field", str(exc))
    if kind == "http":
        http = table.table("http")
        assert http is not None
        request = _http_request(http, ())
        http.done()
        names = table.table("names")
        if names is None:
            leader = Leader(kind, http=request, field=field_path, none=none)
        else:
            lookup = _http_request(names, ())
            leader = Leader(kind, http=request, field=field_path, names=lookup, none=none,
                            names_list=names.text("list", required=True), names_id=names.text("id", required=True),
                            names_name=names.text("name", required=True))
            names.done()
    elif kind == "request":
        if client.protocol != "json-lines":
            table.fail("leader.request", f"asks over the client's connection: needs protocol json-lines, "
                       f"not {client.protocol}")
        leader = Leader(kind, request=table.get("request", dict), field=field_path, none=none)
    else:
        command = table.strings("command", nonempty=True)
        for text in command:
            _check(table, "command", text, lambda n: n in HOST_NAMES, ", ".join(HOST_NAMES))
        leader = Leader(kind, command=command, field=field_path, none=none)
    table.done()
    return leader


def _bugs(top: Table, ports: Mapping[str, str], lists: Mapping[str, PeerList],
          client_table: Mapping[str, Any]) -> dict[str, Bug]:
    table = top.table("bugs")
    if table is None:
        return {}
    allowed = node_names_allowed(ports, lists)
    bugs = {}
    for name in table.data:
        if not NAME.fullmatch(name):
            table.fail(table.key(name), "a bug name must be lowercase letters, digits and '-'")
        bug = table.table(name)
        assert bug is not None
        args = bug.strings("args")
        env = bug.string_map("env")
        for text in args:
            _check(bug, "args", text, allowed, NODE_DESCRIBE)
        for key, text in env.items():
            if not ENV_NAME.fullmatch(key):
                bug.fail(bug.key(f"env.{key}"), "not a valid environment variable name")
            _check(bug, f"env.{key}", text, allowed, NODE_DESCRIBE)
        overlay = bug.get("client", dict, {})
        client_args = bug.strings("client_args")
        for text in client_args:
            _check(bug, "client_args", text, lambda n: n in HOST_NAMES, ", ".join(HOST_NAMES))
        if overlay:  # the merged client must be as valid as the plain one
            parse_client(Table(top.path, bug.key("client"), merge(client_table, overlay)), ports)
        if client_args and client_table.get("protocol") != "process":
            bug.fail(bug.key("client_args"), "only a process client takes arguments")
        if not (args or env or overlay or client_args):
            bug.fail(f"bugs.{name}", "changes nothing (give args, env, client or client_args)")
        bugs[name] = Bug(bug.text("description", default=""), args, env, overlay, client_args)
        bug.done()
    table.done()
    return bugs


def _docker(top: Table, directory: str) -> tuple[tuple[str, ...], dict[str, str]]:
    table = top.table("docker")
    if table is None:
        return (), {}
    packages = table.strings("packages")
    for package in packages:
        if not DEBIAN_PACKAGE.fullmatch(package):
            table.fail("docker.packages", f"{package!r} is not a Debian package name")
    files = {}
    for target, source in table.string_map("files").items():
        if not os.path.isabs(target):
            table.fail(f"docker.files.{target}", "the path in the image must be absolute")
        resolved = os.path.normpath(os.path.join(directory, source))
        if not os.path.isfile(resolved):
            table.fail(f"docker.files.{target}", f"no such file {resolved}")
        files[target] = resolved
    table.done()
    return packages, files


def _check_program(table: Table, key: str, program: str) -> None:
    """A client program named literally must exist now: a run whose every operation fails to start it
    would be a run of nothing (build it first)."""
    if template.placeholders(program):
        return
    directory = os.path.dirname(table.path)
    if program.startswith(("./", "../")):
        program = os.path.normpath(os.path.join(directory, program))
    if "/" in program:
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            table.fail(table.key(key), f"no executable program {program} (build it first?)")
    elif shutil.which(program) is None:
        table.fail(table.key(key), f"program {program!r} not found on PATH")


def _check(table: Table, key: str, text: str, allowed: Callable[[str], bool], describe: str) -> None:
    try:
        template.check(text, allowed, describe=describe)
    except template.TemplateError as exc:
        table.fail(table.key(key), str(exc))
