"""One host reached with the system OpenSSH client, sharing one connection (ControlMaster).

Why the `ssh` binary and not paramiko: it is what people already reach their hosts with, so
their ~/.ssh/config, agent, jump hosts, certificates and known_hosts work unchanged; connection
sharing makes each later command a new channel on the open connection (milliseconds, no new
handshake); and faultbed needs no extra Python package. Every command is an argument list
locally; the remote side gets it quoted with shlex (ssh always hands a command to the
remote shell as one string).

The master runs in the foreground as our child (`-M -N`, ControlPersist=no), so its pid is
known: the run records it and `faultbed gc` stops it after a crash; `close()` ends it.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from typing import Mapping

from faultbed.cluster.ssh.inventory import Host
from faultbed.errors import SetupError

log = logging.getLogger(__name__)

SSH = "ssh"
CONNECT_TIMEOUT = 15    # seconds for TCP connect + handshake of the master (a loaded host is slow)
COMMAND_TIMEOUT = 60.0  # default for one remote command
# ssh's own failures on stderr -> the one line a user reads (first match wins).
DIAGNOSES = (
    ("connection refused", "refused the connection (is sshd running on that port?)"),
    ("connection timed out", "unreachable (connection timed out)"),
    ("no route to host", "unreachable (no route to host)"),
    ("network is unreachable", "unreachable (network is unreachable)"),
    ("could not resolve hostname", "unknown host name"),
    ("host key verification failed", "its host key is not in known_hosts (or changed): unknown host key"),
    ("no ed25519 host key is known", "its host key is not in known_hosts: unknown host key"),
    ("remote host identification has changed", "its host key changed: refusing it"),
    ("permission denied", "refused our key (permission denied)"),
    ("no such identity", "the key file cannot be read"),
    ("load key", "the key file cannot be read or is not a private key"),
    ("connection closed", "closed the connection"),
    ("connection reset", "reset the connection"),
)


def diagnose(stderr: str) -> str:
    """What an ssh failure means, in a few words (the last line of ssh's stderr otherwise)."""
    lowered = stderr.lower()
    for needle, meaning in DIAGNOSES:
        if needle in lowered:
            return meaning
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "ssh failed without a message"


def ssh_options(host: Host, control_path: str | None = None) -> list[str]:
    """The options every ssh call to `host` takes (no password prompts; strict host keys)."""
    options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
               "-o", "StrictHostKeyChecking=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
               "-p", str(host.port), "-l", host.user]
    if host.known_hosts:
        options += ["-o", f"UserKnownHostsFile={host.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if host.key:
        options += ["-i", host.key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"]
    if control_path:
        options += ["-o", f"ControlPath={control_path}"]
    return options


class SSHConnection:
    """A shared connection to one host; a context manager (the master ends on exit)."""

    def __init__(self, host: Host, control_dir: str, env: Mapping[str, str] | None = None) -> None:
        self.host = host
        self.control_path = os.path.join(control_dir, f"{host.name}.sock")
        self._stderr_path = os.path.join(control_dir, f"{host.name}.err")
        self._env = dict(os.environ, **(env or {}))
        self._master: subprocess.Popen[bytes] | None = None

    def describe(self) -> str:
        return f"host {self.host.name} ({self.host.user}@{self.host.address}:{self.host.port})"

    @property
    def pid(self) -> int | None:
        return self._master.pid if self._master is not None else None

    def __enter__(self) -> "SSHConnection":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Start the master and wait until it is connected, or SetupError with ssh's reason in one line."""
        with open(self._stderr_path, "wb") as err:
            self._master = subprocess.Popen(
                [SSH, *ssh_options(self.host, self.control_path), "-M", "-N", "-o", "ControlPersist=no",
                 self.host.address], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env=self._env, start_new_session=True)
        deadline = time.monotonic() + CONNECT_TIMEOUT + 10
        while True:
            if self._master.poll() is not None:
                reason = diagnose(self._read_stderr())
                self._master = None
                raise SetupError(f"{self.describe()}: {reason}")
            if self._check():
                log.info("ssh: connected to %s", self.describe())
                return
            if time.monotonic() > deadline:
                self.close()
                raise SetupError(f"{self.describe()}: no connection within {CONNECT_TIMEOUT + 10}s")
            time.sleep(0.05)

    def _check(self) -> bool:
        result = subprocess.run([SSH, "-o", f"ControlPath={self.control_path}", "-O", "check", self.host.address],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=10, env=self._env)
        return result.returncode == 0

    def _read_stderr(self) -> str:
        try:
            with open(self._stderr_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def run(self, argv: list[str], stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """`argv` on the host over the shared connection; SetupError when it fails and `check`."""
        if self._master is None:
            raise SetupError(f"{self.describe()}: not connected")
        command = [SSH, *ssh_options(self.host, self.control_path), "-o", "ControlMaster=no", self.host.address,
                   "--", shlex.join(argv)]
        try:
            result = subprocess.run(command, input=stdin if stdin is not None else b"", capture_output=True,
                                    timeout=timeout, env=self._env)
        except subprocess.TimeoutExpired:
            raise SetupError(f"{self.describe()}: `{shlex.join(argv)[:80]}` did not finish within {timeout:g}s") \
                from None
        if check and result.returncode != 0:
            error = result.stderr.decode(errors="replace")
            what = diagnose(error) if result.returncode == 255 else (error.strip().splitlines() or ["no output"])[-1]
            raise SetupError(f"{self.describe()}: `{shlex.join(argv)[:80]}` failed ({result.returncode}): {what}")
        return result

    def forward(self, local_port: int, remote_host: str, remote_port: int) -> None:
        """127.0.0.1:local_port here reaches remote_host:remote_port as seen from the host (over the master)."""
        spec = f"127.0.0.1:{local_port}:{remote_host}:{remote_port}"
        result = subprocess.run([SSH, "-o", f"ControlPath={self.control_path}", "-O", "forward", "-L", spec,
                                 self.host.address], stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
                                env=self._env)
        if result.returncode != 0:
            raise SetupError(f"{self.describe()}: cannot forward {spec}: "
                             f"{result.stderr.decode(errors='replace').strip()}")

    def close(self) -> None:
        """End the master (and with it every forward); quiet when it is gone already."""
        master, self._master = self._master, None
        if master is None:
            return
        if master.poll() is None:
            subprocess.run([SSH, "-o", f"ControlPath={self.control_path}", "-O", "exit", self.host.address],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10, env=self._env)
            try:
                master.wait(timeout=3)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait(timeout=3)
