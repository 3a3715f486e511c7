"""Free loopback ports below 32768, reserved across processes so parallel runs never collide.

The kernel's ephemeral range starts at 32768, so ports below it are ours to pick.
A port is reserved by holding an exclusive flock on /tmp/faultbed-ports/<port>;
the kernel drops the lock if the holder dies, so a crashed run frees its ports.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
from typing import IO

from faultbed.errors import SetupError

LOW, HIGH = 20000, 32000
LOCK_DIR = os.environ.get("FAULTBED_PORT_LOCKS", "/tmp/faultbed-ports")


class PortReservation:
    """Ports reserved by this process until `release()` (or the process exits)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._locks: dict[int, IO[bytes]] = {}
        self._random = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "big"))
        os.makedirs(LOCK_DIR, exist_ok=True)

    def __enter__(self) -> "PortReservation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def take(self, count: int = 1) -> list[int]:
        """Reserve `count` free ports."""
        ports = []
        for _ in range(count):
            ports.append(self._take_one())
        return ports

    def _take_one(self) -> int:
        for _ in range(2000):
            port = self._random.randrange(LOW, HIGH)
            if port in self._locks:
                continue
            fh = open(os.path.join(LOCK_DIR, str(port)), "ab")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            if not _bindable(self.host, port):
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()
                continue
            self._locks[port] = fh
            return port
        raise SetupError(f"no free port in {LOW}-{HIGH} on {self.host} after 2000 tries")

    def release(self) -> None:
        for fh in self._locks.values():
            try:
                fcntl.flock(fh, fcntl.LOCK_UN)
            finally:
                fh.close()
        self._locks.clear()


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True
