"""A file system's client as the runner sees it: operations through the generic client chosen by
[client], and `status()` from [ready] (is the node up?) and [leader] (whom does it follow?).

status() raises OSError/ValueError while the node is not ready. Without [leader] the status has
no `leader` key: the cluster is ready when every node is (see RunningCluster.wait_ready), and
`kill:primary` falls back to a node chosen at planning time.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from faultbed.cluster.systems import Outcome
from faultbed.cluster.systems.file import schema, template
from faultbed.cluster.systems.file.http import HttpClient, HttpError
from faultbed.cluster.systems.file.jsonlines import JsonLinesClient, JsonLinesConnection
from faultbed.cluster.systems.file.process import ProcessClient

if TYPE_CHECKING:
    from faultbed.cluster.systems.file import FileSystem

# docker-proxy accepts a connection on the host and closes it when the node does not listen:
# a TCP check waits this long for such a close before it calls the port open.
CLOSE_GRACE = 0.05
LOG_TAIL = 1024 * 1024


class FileClient:
    """Client protocol implementation for a system file (see cluster.systems.Client)."""

    def __init__(self, system: "FileSystem", client: schema.Client, client_args: tuple[str, ...],
                 address: tuple[str, int], node: str, timeout: float) -> None:
        self.system = system
        self.spec = system.spec
        self.client_spec = client
        self.client_args = client_args
        self.address = address
        self.node = node
        self.timeout = timeout
        self.host_values = {"address": f"{address[0]}:{address[1]}", "node": node, "nodes": "",
                            "dir": self.spec.directory, "python": sys.executable}
        self._inner: Any = None
        self._http: HttpClient | None = None

    # -- Client protocol -------------------------------------------------------------
    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        return self._client().invoke(f, key, value, timeout)

    def status(self, timeout: float) -> dict[str, Any]:
        """{"node"} (+ "leader" when the file has [leader]); OSError/ValueError while not ready."""
        deadline = time.monotonic() + timeout
        self._check_ready(timeout)
        status: dict[str, Any] = {"node": self.node}
        if self.spec.leader is not None:
            status["leader"] = self._leader(self.spec.leader, max(0.05, deadline - time.monotonic()))
        return status

    def close(self) -> None:
        for client in (self._inner, self._http):
            if client is not None:
                client.close()
        self._inner = self._http = None

    # -- clients ---------------------------------------------------------------------
    def _client(self) -> Any:
        if self._inner is None:
            spec = self.client_spec
            if spec.protocol == "json-lines":
                self._inner = JsonLinesClient(self.address, self.node, self.timeout)
            elif spec.protocol == "http":
                self._inner = HttpClient(spec, self.address, self.node, self.timeout)
            else:
                self._inner = ProcessClient(self._host_command(spec.command) + list(self.client_args),
                                            self.node, self.spec.directory, self._client_log(),
                                            self.system.client_env())
        return self._inner

    def _host_command(self, command: tuple[str, ...]) -> list[str]:
        values = dict(self.host_values, nodes=self._nodes())
        rendered = [str(template.render(text, values)) for text in command]
        if rendered and rendered[0].startswith(("./", "../")):
            rendered[0] = os.path.normpath(os.path.join(self.spec.directory, rendered[0]))
        return rendered

    def _probe_command(self, command: tuple[str, ...]) -> list[str]:
        """A [ready]/[leader] command; one that runs the client program gets the planted bugs' client_args
        too, so that it sees the system as the clients do (e.g. a bucket the probe creates)."""
        rendered = self._host_command(command)
        spec = self.client_spec
        if spec.protocol == "process" and rendered[:1] == self._host_command(spec.command)[:1]:
            rendered += list(self.client_args)
        return rendered

    def _nodes(self) -> str:
        return ",".join(self.system.known_nodes())

    def _client_log(self) -> str | None:
        log = self.system.log_path(self.node)
        return None if log is None else log[0][:-len(".log")] + ".client.log"

    def _http_caller(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(schema.Client("http", self.spec.client.port), self.address, self.node,
                                    self.timeout)
        return self._http

    # -- readiness -------------------------------------------------------------------
    def _check_ready(self, timeout: float) -> None:
        ready = self.spec.ready
        if ready.kind == "tcp":
            tcp_open(self.address, timeout)
        elif ready.kind == "http":
            response = self._http_caller().session.get(
                f"http://{self.address[0]}:{self.address[1]}{ready.http_path}", timeout=timeout)
            if response.status_code != ready.http_status:
                raise ValueError(f"{self.node}: {ready.http_path} answered {response.status_code}, "
                                 f"not {ready.http_status}")
        elif ready.kind == "command":
            result = _run(self._probe_command(ready.command), self.spec.directory, timeout, self.system.client_env())
            if result.returncode != 0:
                raise ValueError(f"{self.node}: ready command exited {result.returncode}")
        else:
            log = self.system.log_path(self.node)
            if log is None or not _log_matches(log[0], log[1], ready.log):
                raise ValueError(f"{self.node}: no line of its log matches {ready.log!r} yet")

    # -- leader ----------------------------------------------------------------------
    def _leader(self, leader: schema.Leader, timeout: float) -> str | None:
        if leader.kind == "http":
            assert leader.http is not None
            try:
                answer = self._http_caller().call(leader.http, {}, timeout)
            except HttpError as exc:
                raise ValueError(f"{self.node}: leader: {exc}") from exc
            found = template.extract(answer, leader.field)
            if found is None or str(found) in leader.none:
                return None
            if leader.names is not None:
                return self._name_of(leader, str(found), timeout)
            return str(found)
        if leader.kind == "request":
            inner = self._client()
            assert isinstance(inner, JsonLinesClient)
            connection: JsonLinesConnection = inner.connection
            answer = connection.call(dict(leader.request), timeout)
            found = template.extract(answer, leader.field)
        else:
            result = _run(self._probe_command(leader.command), self.spec.directory, timeout, self.system.client_env())
            if result.returncode != 0:
                raise ValueError(f"{self.node}: leader command exited {result.returncode}")
            lines = result.stdout.decode(errors="replace").strip().splitlines()
            found = lines[0].strip() if lines else None
            if found and leader.field:
                found = template.extract(json.loads(found), leader.field)
        return None if found is None or str(found) in leader.none else str(found)

    def _name_of(self, leader: schema.Leader, identifier: str, timeout: float) -> str | None:
        assert leader.names is not None
        try:
            answer = self._http_caller().call(leader.names, {}, timeout)
        except HttpError as exc:
            raise ValueError(f"{self.node}: leader names: {exc}") from exc
        for member in template.extract(answer, leader.names_list) or []:
            if str(template.extract(member, leader.names_id)) == identifier:
                name = template.extract(member, leader.names_name)
                return None if name in (None, "") else str(name)
        return None


def tcp_open(address: tuple[str, int], timeout: float) -> None:
    """OSError unless something accepts a connection at `address` and keeps it open a moment."""
    with socket.create_connection(address, timeout=max(0.01, timeout)) as sock:
        sock.settimeout(CLOSE_GRACE)
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                raise ConnectionError(f"{address[0]}:{address[1]} closed the connection at once")
        except (socket.timeout, TimeoutError):
            pass


def _run(command: list[str], cwd: str, timeout: float, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=max(0.05, timeout))
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"{command[0]} did not finish within {timeout:.1f}s") from exc


def _log_matches(path: str, start: int, pattern: str) -> bool:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(start, size - LOG_TAIL))
            text = fh.read().decode(errors="replace")
    except OSError:
        return False
    return re.search(pattern, text, re.MULTILINE) is not None
