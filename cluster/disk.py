"""A node's data directory behind faultbed-diskfs (cluster/diskfs), the FUSE filesystem that loses
un-fsynced writes on a power loss.

The backing directory stands for the disk and holds exactly what was made durable
(fsync, fdatasync, msync); the mount over it is where the node reads and writes.
`power_loss()` is SIGKILL of the daemon (its volatile overlays die with it; the
kernel aborts the connection and drops the mount's page cache, so nothing can
write lost data back), a lazy unmount of the dead mount, and a fresh mount over
the same backing directory. The caller kills the node's processes first.

The daemon carries FAULTBED_RUN in its environment and the mountpoint is noted in
the run record, so `faultbed gc` stops it and unmounts what a crash left.
Spec options: {"diskfs": true} mounts it without any disk fault (benchmarks);
{"diskfs_writeback": SECONDS} makes un-fsynced data durable after that long, as the
kernel's flusher would (default 0: never, the strictest reading of POSIX).
FAULTBED_FUSE_DEVICE names the FUSE device to require (default /dev/fuse; tests
point it at a missing file to act out a machine without FUSE).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import time

from faultbed.cluster.registry import RunRecord, run_env
from faultbed.cluster.toxiproxy import PROJECT_ROOT
from faultbed.errors import SetupError

log = logging.getLogger(__name__)

BINARY_ENV = "FAULTBED_DISKFS"
NEEDS_FUSE = ("power-loss", "disk-error", "disk-slow")  # fault kinds that need the filesystem (nemesis/disk.py)
DEVICE_ENV = "FAULTBED_FUSE_DEVICE"
MOUNT_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def default_binary() -> str:
    """$FAULTBED_DISKFS, else .tools/bin/faultbed-diskfs (built by scripts/setup)."""
    return os.environ.get(BINARY_ENV) or os.path.join(PROJECT_ROOT, ".tools", "bin", "faultbed-diskfs")


def fuse_device() -> str:
    return os.environ.get(DEVICE_ENV) or "/dev/fuse"


def wanted(nemesis: tuple[str, ...], options: dict[str, object]) -> bool:
    """Whether a run mounts faultbed-diskfs: a fault that needs it, or options {"diskfs": true}."""
    return bool(options.get("diskfs")) or any(entry.split(":")[0].strip() in NEEDS_FUSE for entry in nemesis)


def check_available() -> None:
    """SetupError (one line, exit 3) unless FUSE and the daemon are there."""
    device = fuse_device()
    if not os.path.exists(device):
        raise SetupError(f"disk faults need FUSE, and {device} does not exist on this machine")
    if not os.access(default_binary(), os.X_OK):
        raise SetupError(f"disk faults need {default_binary()} (run scripts/setup)")


def is_mounted(path: str) -> bool:
    """True when `path` is a mountpoint in this mount namespace (read from /proc/self/mountinfo)."""
    wanted = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            return any(_unescape(line.split()[4]) == wanted for line in fh if len(line.split()) > 4)
    except OSError:
        return False


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def detach(path: str) -> None:
    """Lazy unmount (MNT_DETACH): works on a dead FUSE mount and on a busy one."""
    if not is_mounted(path):
        return
    result = subprocess.run(["umount", "-l", path], capture_output=True, text=True, timeout=STOP_TIMEOUT,
                            check=False)
    if result.returncode != 0 and is_mounted(path):
        raise SetupError(f"cannot unmount {path}: {result.stderr.strip()}")


class DiskMount:
    """One node's faultbed-diskfs mount: `mountpoint` over `backing`; a context manager."""

    def __init__(self, node: str, backing: str, mountpoint: str, record: RunRecord | None = None,
                 run_id: str | None = None, log_path: str | None = None, writeback: float = 0.0,
                 sync_backing: bool = False) -> None:
        """`writeback`: seconds after which un-fsynced data becomes durable anyway (0: never);
        `sync_backing`: also fsync the backing file on fsync (real disk I/O; off: the host's
        page cache stands for the platter, since the host itself never loses power)."""
        self.node = node
        self.writeback = writeback
        self.sync_backing = sync_backing
        self.backing = backing
        self.mountpoint = mountpoint
        self.power_losses = 0
        self._record = record
        self._run_id = run_id
        self._log_path = log_path or os.devnull
        self._proc: subprocess.Popen[bytes] | None = None
        self._faults = {"fsync_error": False, "delay_ms": 0}

    def __enter__(self) -> "DiskMount":
        check_available()
        os.makedirs(self.backing, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        if self._record is not None:
            self._record.note_mount(self.mountpoint)
        self._mount()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unmount()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def power_loss(self) -> None:
        """Forget every un-fsynced write, then mount again (the node's processes must be dead)."""
        self._kill()
        detach(self.mountpoint)
        self.power_losses += 1
        self._mount()
        log.info("%s: power loss: un-fsynced writes dropped, remounted", self.node)

    @property
    def control_path(self) -> str:
        """The daemon's injected faults (JSON); kept next to the mountpoint, so a remount keeps them."""
        return self.mountpoint.rstrip("/") + ".control"

    def set_faults(self, fsync_error: bool | None = None, delay_ms: int | None = None) -> None:
        """Make fsync fail with EIO, or every write and fsync slow, until set back (a bad disk stays bad)."""
        if fsync_error is not None:
            self._faults["fsync_error"] = fsync_error
        if delay_ms is not None:
            self._faults["delay_ms"] = delay_ms
        tmp = self.control_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self._faults, fh)
        os.replace(tmp, self.control_path)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)
            self._expect(b"reloaded", "take the new disk faults")
        log.info("%s: disk faults now %s", self.node, self._faults)

    def unmount(self) -> None:
        """Clean shutdown: the daemon unmounts and makes its overlays durable, as a sync before halt."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("%s: faultbed-diskfs did not stop in %.0fs; killing it", self.node, STOP_TIMEOUT)
                self._kill()
        self._proc = None
        detach(self.mountpoint)
        if self._record is not None:
            self._record.forget_mount(self.mountpoint)

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
        self._proc = None

    def _expect(self, word: bytes, what: str) -> None:
        """Wait for the daemon's next line on stdout to be `word` (it says so when it is done)."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], MOUNT_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        if line.strip() != word:
            raise SetupError(f"{self.node}: faultbed-diskfs did not {what} within {MOUNT_TIMEOUT:.0f}s "
                             f"(see {self._log_path})")

    def _mount(self) -> None:
        if is_mounted(self.mountpoint):
            detach(self.mountpoint)
        env = dict(os.environ)
        if self._run_id:
            env.update(run_env(self._run_id))
        with open(self._log_path, "ab") as logfile:
            command = [default_binary(), "-backing", self.backing, "-mount", self.mountpoint,
                       "-control", self.control_path, "-writeback", f"{self.writeback}s"] + (["-sync-backing"] if self.sync_backing else [])
            proc = subprocess.Popen(command,
                                    stdout=subprocess.PIPE, stderr=logfile, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
        self._proc = proc
        if self._record is not None:
            self._record.add_process(f"diskfs-{self.node}", proc.pid)
        try:
            self._expect(b"mounted", f"mount {self.mountpoint}")
        except SetupError:
            self._kill()
            raise
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not is_mounted(self.mountpoint) and time.monotonic() < deadline:
            time.sleep(0.01)
