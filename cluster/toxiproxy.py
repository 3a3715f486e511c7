"""The Toxiproxy server (v2.12.0, built by scripts/setup) as a context manager, and a typed client.

Every toxic is added with toxicity 1.0: since v2.9 Toxiproxy's `-seed` has no
effect, so nothing in faultbed may depend on Toxiproxy's own randomness.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Mapping

import requests  # type: ignore[import]  # Debian ships no stubs

from faultbed.errors import FaultbedError, SetupError

log = logging.getLogger(__name__)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY_ENV = "FAULTBED_TOXIPROXY_SERVER"
STREAMS = ("upstream", "downstream")
TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")


def default_binary() -> str:
    """$FAULTBED_TOXIPROXY_SERVER, else .tools/bin/toxiproxy-server in the project."""
    return os.environ.get(BINARY_ENV) or os.path.join(PROJECT_ROOT, ".tools", "bin", "toxiproxy-server")


class ToxiproxyError(FaultbedError):
    """The Toxiproxy API refused a call (`status` is its HTTP status) or could not be reached (None)."""

    def __init__(self, message: str, status: int | None, method: str, path: str) -> None:
        where = f"toxiproxy {method} {path}"
        super().__init__(f"{where}: {message}" + (f" (HTTP {status})" if status is not None else ""))
        self.message = message
        self.status = status
        self.method = method
        self.path = path


@dataclass(frozen=True)
class Toxic:
    """A toxic as Toxiproxy reports it; `stream` is upstream (client->server) or downstream."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Toxic":
        return cls(name=data["name"], type=data["type"], stream=data["stream"],
                   toxicity=float(data["toxicity"]), attributes=dict(data.get("attributes") or {}))


@dataclass(frozen=True)
class Proxy:
    """A proxy as Toxiproxy reports it: it listens on `listen` and forwards to `upstream`."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Proxy":
        return cls(name=data["name"], listen=data["listen"], upstream=data["upstream"],
                   enabled=bool(data["enabled"]),
                   toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or ()))


@dataclass(frozen=True)
class ProxyConfig:
    """What to create: a named proxy from `listen` to `upstream`."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled}


class ToxiproxyClient:
    """Typed calls to Toxiproxy's HTTP API; every call has a timeout; errors are ToxiproxyError."""

    def __init__(self, api: str, timeout: float = 5.0) -> None:
        self.api = api.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()  # requests.Session is not thread-safe: one per thread

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            response = self._session().request(method, self.api + path, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ToxiproxyError(f"no answer from {self.api}: {exc}", None, method, path) from exc
        if response.status_code not in ok:
            raise ToxiproxyError(_error_message(response), response.status_code, method, path)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- server ----------------------------------------------------------------
    def version(self) -> str:
        data = self._call("GET", "/version")
        return str(data["version"]) if isinstance(data, dict) else str(data)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic on the server."""
        self._call("POST", "/reset", ok=(204,))

    # -- proxies ----------------------------------------------------------------
    def proxies(self) -> dict[str, Proxy]:
        data = self._call("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in data.items()}

    def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._call("GET", f"/proxies/{name}"))

    def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        body = ProxyConfig(name, listen, upstream, enabled).to_json()
        return Proxy.from_json(self._call("POST", "/proxies", body, ok=(201,)))

    def populate(self, proxies: Iterable[ProxyConfig]) -> list[Proxy]:
        """Create (or replace) many proxies in one call."""
        data = self._call("POST", "/populate", [p.to_json() for p in proxies], ok=(201,))
        return [Proxy.from_json(p) for p in data.get("proxies") or ()]

    def set_enabled(self, name: str, enabled: bool) -> Proxy:
        """Disable: close every connection and stop listening; enable: listen again."""
        return Proxy.from_json(self._call("PATCH", f"/proxies/{name}", {"enabled": enabled}))

    def enable_proxy(self, name: str) -> Proxy:
        return self.set_enabled(name, True)

    def disable_proxy(self, name: str) -> Proxy:
        return self.set_enabled(name, False)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}", ok=(204,))

    # -- toxics -------------------------------------------------------------------
    def toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.from_json(t) for t in self._call("GET", f"/proxies/{proxy}/toxics")]

    def add_toxic(self, proxy: str, name: str, type_: str, stream: str = "downstream",
                  attributes: Mapping[str, Any] | None = None) -> Toxic:
        """Add a toxic to one stream of a proxy, always with toxicity 1.0."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, not {stream!r}")
        body = {"name": name, "type": type_, "stream": stream, "toxicity": 1.0,
                "attributes": dict(attributes or {})}
        return Toxic.from_json(self._call("POST", f"/proxies/{proxy}/toxics", body))

    def update_toxic(self, proxy: str, name: str, attributes: Mapping[str, Any]) -> Toxic:
        body = {"toxicity": 1.0, "attributes": dict(attributes)}
        return Toxic.from_json(self._call("PATCH", f"/proxies/{proxy}/toxics/{name}", body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}", ok=(204,))


class ToxiproxyGroup(ToxiproxyClient):
    """Several Toxiproxy servers seen as one client: each proxy lives on the server its name is routed
    to (the ssh backend: the proxies of node a's links on a's host). Server-wide calls go to all."""

    def __init__(self, servers: Mapping[str, ToxiproxyClient], route: Mapping[str, str]) -> None:
        super().__init__("group:" + ",".join(servers))
        self.servers = dict(servers)
        self.route = dict(route)  # proxy name -> server name

    def _server(self, proxy: str, method: str, path: str) -> ToxiproxyClient:
        server = self.servers.get(self.route.get(proxy, ""))
        if server is None:
            raise ToxiproxyError(f"no server holds proxy {proxy!r}", 404, method, path)
        return server

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        if path.startswith("/proxies/"):
            return self._server(path.split("/")[2], method, path)._call(method, path, body, ok)
        if path == "/proxies" and method == "POST":
            return self._server(body["name"], method, path)._call(method, path, body, ok)
        if path == "/proxies":
            merged: dict[str, Any] = {}
            for server in self.servers.values():
                merged.update(server._call(method, path, body, ok))
            return merged
        if path == "/populate":
            created: list[Any] = []
            for name, server in self.servers.items():
                mine = [p for p in body if self.route.get(p["name"]) == name]
                if mine:
                    created += (server._call(method, path, mine, ok) or {}).get("proxies") or []
            return {"proxies": created}
        answers = [server._call(method, path, body, ok) for server in self.servers.values()]
        return answers[0] if answers else None


def _error_message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return str(response.text).strip() or str(response.reason)
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return str(response.text).strip()


class ToxiproxyServer:
    """A toxiproxy-server process on host:port: started on enter, answering before enter returns, stopped on exit."""

    def __init__(self, host: str, port: int, log_path: str, env: Mapping[str, str] | None = None,
                 binary: str | None = None, start_timeout: float = 10.0, stop_timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.env = dict(env or {})
        self.binary = binary or default_binary()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.api = f"http://{host}:{port}"
        self.client = ToxiproxyClient(self.api)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> "ToxiproxyServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise SetupError(f"toxiproxy-server not found at {self.binary}: run `make setup`")
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        env = {**os.environ, **self.env}
        # Own session: a Ctrl-C on the terminal reaches us, and we stop the server in order.
        self._proc = subprocess.Popen(
            [self.binary, "-host", self.host, "-port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        log.info("toxiproxy-server pid %d on %s", self._proc.pid, self.api)
        try:
            self._wait_answering()
        except BaseException:
            self.stop()
            raise

    def _wait_answering(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        probe = ToxiproxyClient(self.api, timeout=0.5)
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SetupError(f"toxiproxy-server exited with {self._proc.returncode} while starting "
                                 f"on {self.host}:{self.port}; see {self.log_path}")
            failure = self._logged_failure()
            if failure:  # v2.12 logs a failed listen but keeps running
                raise SetupError(f"toxiproxy-server could not serve its API on {self.host}:{self.port}: "
                                 f"{failure}; see {self.log_path}")
            try:
                version = probe.version()
            except ToxiproxyError as exc:
                last_error = exc.message
                time.sleep(0.02)
                continue
            log.debug("toxiproxy-server %s answers on %s", version, self.api)
            return
        raise SetupError(f"toxiproxy-server API at {self.api}/version did not answer within "
                         f"{self.start_timeout:.0f}s ({last_error}); see {self.log_path}")

    def _logged_failure(self) -> str | None:
        """The error of a `Server finished with error` line the server wrote since it started."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_start)
                lines = fh.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal") \
                    and "finished" in str(entry.get("message", "")):
                return str(entry.get("error") or entry.get("message"))
        return None

    def restart(self) -> None:
        """Replace a server that stopped answering: SIGKILL (it may be stopped or wedged), then start anew."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            log.warning("toxiproxy-server pid %d stopped answering; killing and restarting it", proc.pid)
            proc.kill()
            proc.wait(timeout=self.stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout`; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a stopped server cannot act on SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("toxiproxy-server pid %d ignored SIGTERM for %.0fs; killing it",
                            proc.pid, self.stop_timeout)
                proc.kill()
                proc.wait(timeout=self.stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
