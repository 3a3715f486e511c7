"""A host as the ssh backend drives it: the agent's verbs (agent.py) over one shared connection,
files copied in as a tar stream, and a run's directory copied back."""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from typing import Any, Iterable

from faultbed.cluster.ssh.connection import SSHConnection
from faultbed.errors import SetupError

AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")
COPY_TIMEOUT = 300.0


def agent_source() -> bytes:
    with open(AGENT_PATH, "rb") as fh:
        return fh.read()


@dataclass(frozen=True)
class RemoteProcess:
    """A process started on a host: its pid and kernel start time there (never a name)."""

    name: str
    pid: int
    start: int


class RemoteHost:
    """The agent's verbs on one connected host; every answer is parsed JSON, every failure SetupError."""

    def __init__(self, connection: SSHConnection) -> None:
        self.connection = connection
        self.host = connection.host
        self._agent = agent_source()

    def agent(self, verb: str, *args: str, timeout: float = 90.0) -> Any:
        result = self.connection.run([self.host.python, "-S", "-", verb, *args], stdin=self._agent, timeout=timeout)
        try:
            return json.loads(result.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SetupError(f"{self.connection.describe()}: the agent's {verb} answered "
                             f"{result.stdout.decode(errors='replace')[:120]!r}") from None

    def spawn(self, run_dir: str, specs: list[dict[str, Any]]) -> list[RemoteProcess]:
        """Start each {name, log, cwd, env, argv} (one round trip), each recorded in the run's processes."""
        answer = self.agent("spawn", run_dir, json.dumps(specs))
        return [RemoteProcess(spec["name"], int(a["pid"]), int(a["start"])) for spec, a in zip(specs, answer)]

    def state(self, processes: Iterable[RemoteProcess]) -> list[str]:
        args = [str(v) for p in processes for v in (p.pid, p.start)]
        return list(self.agent("state", *args)) if args else []

    def signal(self, process: RemoteProcess, signal_name: str, wanted: str, timeout: float) -> str:
        """Send the signal (when the pid is still that process), wait there until it is `wanted`; its state."""
        return str(self.agent("signal", str(process.pid), str(process.start), signal_name, wanted, str(timeout),
                              timeout=timeout + 60))

    def stop(self, process: RemoteProcess, grace: float) -> bool:
        return bool(self.agent("stop", str(process.pid), str(process.start), str(grace), timeout=grace + 60))

    def put_tar(self, directory: str, bundle: bytes) -> None:
        """Unpack a tar (from `tar_of`) into `directory` on the host."""
        self.connection.run(["tar", "-x", "--no-same-owner", "-C", directory, "-f", "-"], stdin=bundle,
                            timeout=COPY_TIMEOUT)

    def fetch_directory(self, directory: str, subdirs: list[str], into: str) -> None:
        """Copy `subdirs` of `directory` on the host into the local directory `into` (kept as they are)."""
        result = self.connection.run(["tar", "-c", "-C", directory, "--ignore-failed-read", *subdirs],
                                     timeout=COPY_TIMEOUT, check=False)
        if result.returncode not in (0, 1):  # 1: a file changed while read (a log still written)
            raise SetupError(f"{self.connection.describe()}: cannot read {directory}: "
                             f"{result.stderr.decode(errors='replace').strip()[:160]}")
        os.makedirs(into, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r") as tar:
            safe = [m for m in tar.getmembers() if (m.isfile() or m.isdir()) and not m.name.startswith("/")
                    and ".." not in m.name.split("/")]
            tar.extractall(into, members=safe)  # only plain files and folders inside `into`

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes:
        result = self.connection.run(["tail", "-c", str(limit), path], check=False, timeout=30)
        return result.stdout if result.returncode == 0 else b""


def tar_of(files: Iterable[tuple[str, str, int]]) -> bytes:
    """A tar of (target relative to where it is unpacked, local source, mode), owned by nobody in particular."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for target, source, mode in files:
            info = tar.gettarinfo(source, arcname=target)
            info.mode, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, "", ""
            with open(source, "rb") as fh:
                tar.addfile(info, fh)
    return buffer.getvalue()
