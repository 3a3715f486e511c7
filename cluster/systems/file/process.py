"""The process client: a program in any language, one per client, JSON lines on stdin/stdout.

faultbed writes one request per line to the program's stdin and reads one reply per
line from its stdout (the same shapes as json-lines: {"id","f","key","value","timeout"}
-> {"id"?,"type","value","error"}). The program starts on the first operation; a request
it does not answer within the operation's timeout is info (fail for a read) and the
program is killed and started again for the next one. It must exit when its stdin closes.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import time
from typing import IO, Any

from faultbed.cluster.systems import FAIL, Outcome
from faultbed.cluster.systems.file.jsonlines import MAX_LINE, outcome_of, server_timeout, uncertain

log = logging.getLogger(__name__)

STOP_GRACE = 1.0


class ProcessClient:
    """One client program, started lazily and restarted after a lost answer."""

    def __init__(self, command: list[str], node: str, cwd: str, stderr_path: str | None,
                 env: dict[str, str] | None = None) -> None:
        self.command = command
        self.env = env or {}
        self.node = node
        self.cwd = cwd
        self.stderr_path = stderr_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buffer = b""
        self._next_id = 0

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            try:
                self._start()
            except OSError as exc:
                return Outcome(FAIL, error=f"cannot start client program {self.command[0]}: {exc.strerror}",
                               node=self.node)
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        request = {"id": self._next_id, "f": f, "key": key, "value": value,
                   "timeout": server_timeout(timeout)}
        try:
            self._proc.stdin.write((json.dumps(request, separators=(",", ":")) + "\n").encode())
            self._proc.stdin.flush()
        except OSError as exc:  # the program died before reading: nothing reached the system
            self._stop()
            return Outcome(FAIL, error=f"client program gone: {exc}", node=self.node)
        try:
            while True:
                reply = json.loads(self._read_line(deadline))
                if not isinstance(reply, dict):
                    raise ValueError(f"reply is not a JSON object: {reply!r}")
                if reply.get("id", self._next_id) == self._next_id:
                    return outcome_of(reply, f, self.node)
        except (OSError, ValueError) as exc:
            self._stop()  # its state is unknown: start a fresh one for the next operation
            return Outcome(uncertain(f), error=f"client program: {exc}", node=self.node)

    def close(self) -> None:
        self._stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _start(self) -> None:
        if self.stderr_path is not None and self._stderr is None:
            self._stderr = open(self.stderr_path, "ab")
        self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr if self._stderr is not None else subprocess.DEVNULL,
                                      cwd=self.cwd, start_new_session=True, env={**os.environ, **self.env})
        self._buffer = b""
        log.debug("%s: started client program pid %d", self.node, self._proc.pid)

    def _read_line(self, deadline: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer within the operation timeout")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ConnectionError(f"exited (code {self._proc.wait(timeout=STOP_GRACE)})")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                raise ValueError("reply line too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: children go too
                except OSError:
                    pass
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                log.warning("%s: client program %d did not exit", self.node, proc.pid)
