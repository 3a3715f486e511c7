"""Free loopback ports below 32768, reserved across processes so parallel runs never collide.

The kernel's ephemeral range starts at 32768, so ports below it are ours to pick.
A port is reserved by holding an exclusive flock on /tmp/faultbed-ports/<port>;
the kernel drops the lock if the holder dies, so a crashed run frees its ports.
A reservation released removes its files, so only a crashed holder's are left for
`faultbed gc` (before, every run left one empty file per port it had used, and gc
reported hundreds of "left-over resources" after runs that had ended cleanly).
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
            path = os.path.join(LOCK_DIR, str(port))
            fh = open(path, "ab")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            if not _still_linked(path, fh.fileno()):  # gc removed the file between open and flock
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
        """Unlink each file while its lock is still held, then let go: a process that opened the file
        before it was unlinked and locks it after finds it unlinked (_still_linked) and picks again."""
        for fh in self._locks.values():
            try:
                if _still_linked(fh.name, fh.fileno()):  # fh.name: the path take() opened
                    os.unlink(fh.name)
            except OSError:
                pass  # the lock directory itself is gone or not ours to change: the file stays for gc
            try:
                fcntl.flock(fh, fcntl.LOCK_UN)
            finally:
                fh.close()
        self._locks.clear()


def _still_linked(path: str, descriptor: int) -> bool:
    """Whether `path` still names the file open at `descriptor` (a lock on an unlinked file holds nothing)."""
    try:
        return os.stat(path).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def remove_stale_locks() -> int:
    """Delete the lock files no live process holds (taking each lock first, so a held one is never
    touched); how many were removed. A reserving process checks its file is still linked."""
    removed = 0
    try:
        names = os.listdir(LOCK_DIR)
    except FileNotFoundError:
        return 0
    for name in names:
        if not name.isdigit():
            continue
        path = os.path.join(LOCK_DIR, name)
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # gone already, or not a plain file
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _still_linked(path, descriptor):
                os.unlink(path)
                removed += 1
        except OSError:
            pass  # held by a live process: in use
        finally:
            os.close(descriptor)  # also drops the lock
    return removed


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True
