"""faultbed-diskfs on its own: what survives a power loss and what does not (real FUSE mounts).

The writes happen in a child process that is SIGKILLed before the power loss, as a node would be:
its open files and mappings are gone, so only the kernel's page cache and the daemon hold its data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from faultbed.cluster.disk import DEVICE_ENV, DiskMount, check_available, is_mounted
from faultbed.errors import SetupError

pytestmark = pytest.mark.integration

WRITER = textwrap.dedent("""
    import mmap, os, sys, time
    root = sys.argv[1]
    with open(os.path.join(root, "synced"), "wb") as f:
        f.write(b"durable"); f.flush(); os.fsync(f.fileno())
        f.write(b"+volatile")                      # after the fsync: lost
    with open(os.path.join(root, "closed"), "wb") as f:
        f.write(b"closed, never fsynced")          # close() promises nothing
    with open(os.path.join(root, "datasync"), "wb") as f:
        f.write(b"fdatasync'd"); f.flush(); os.fdatasync(f.fileno())
    fd = os.open(os.path.join(root, "journal"), os.O_RDWR | os.O_CREAT)
    os.ftruncate(fd, 8192); os.fsync(fd)
    mm = mmap.mmap(fd, 8192)
    mm[0:6] = b"msyncd"; mm.flush()                # msync(MS_SYNC): durable
    mm[4096:4100] = b"lost"                         # dirty page, never msync'd: lost
    with open(os.path.join(root, "truncated"), "wb") as f:
        f.write(b"x" * 100); f.flush(); os.fsync(f.fileno())
        f.truncate(10)                               # not fsync'd: the 100 bytes come back
    print("written", flush=True)
    time.sleep(60)
""")


def _write_then_kill(root: str) -> dict[str, bytes]:
    """Run WRITER under `root`, read every file back while it lives (all visible), then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, root], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"written"
        seen = {name: open(os.path.join(root, name), "rb").read() for name in os.listdir(root)}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    return seen


def _contents(root: str) -> dict[str, bytes]:
    return {name: open(os.path.join(root, name), "rb").read() for name in os.listdir(root)}


def test_power_loss_keeps_what_was_synced_and_forgets_the_rest(tmp_path):
    backing, mountpoint = str(tmp_path / "disk"), str(tmp_path / "mnt")
    with DiskMount("n1", backing, mountpoint) as disk:
        seen = _write_then_kill(mountpoint)
        assert seen["synced"] == b"durable+volatile"
        assert seen["truncated"] == b"x" * 10
        time.sleep(1.2)  # past the kernel's attribute and entry timeouts: a fresh lookup sees the same sizes
        assert _contents(mountpoint)["synced"] == b"durable+volatile"
        disk.power_loss()
        after = _contents(mountpoint)
        assert is_mounted(mountpoint)
    assert after["synced"] == b"durable"
    assert after["closed"] == b""                     # created (metadata is durable), contents lost
    assert after["datasync"] == b"fdatasync'd"
    assert after["journal"][:6] == b"msyncd"
    assert after["journal"][4096:4100] == b"\0\0\0\0"
    assert len(after["journal"]) == 8192
    assert after["truncated"] == b"x" * 100
    assert not is_mounted(mountpoint)
    assert _contents(backing) == after                # the backing directory is the disk


def test_clean_unmount_keeps_everything(tmp_path):
    backing, mountpoint = str(tmp_path / "disk"), str(tmp_path / "mnt")
    with DiskMount("n1", backing, mountpoint):
        _write_then_kill(mountpoint)
    after = _contents(backing)
    assert after["synced"] == b"durable+volatile"
    assert after["closed"] == b"closed, never fsynced"
    assert after["journal"][4096:4100] == b"lost"     # the dirty mapped page, written back at unmount
    assert after["truncated"] == b"x" * 10


def test_missing_fuse_device_is_one_clear_setup_error(tmp_path, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, str(tmp_path / "no-fuse"))
    with pytest.raises(SetupError, match="need FUSE"):
        check_available()


def test_failing_fsync_is_eio_and_makes_nothing_durable_and_slow_disk_is_slow(tmp_path):
    import errno

    backing, mountpoint = str(tmp_path / "disk"), str(tmp_path / "mnt")
    with DiskMount("n1", backing, mountpoint) as disk:
        path = os.path.join(mountpoint, "f")
        disk.set_faults(fsync_error=True)
        with open(path, "wb") as fh:
            fh.write(b"never durable")
            fh.flush()
            with pytest.raises(OSError) as failed:
                os.fsync(fh.fileno())
        assert failed.value.errno == errno.EIO
        disk.power_loss()  # the faults outlive the power loss, as a bad disk would
        assert open(path, "rb").read() == b""
        disk.set_faults(fsync_error=False, delay_ms=100)
        with open(path, "wb") as fh:
            fh.write(b"slow but durable")
            fh.flush()
            began = time.monotonic()
            os.fsync(fh.fileno())
            assert time.monotonic() - began >= 0.1
        disk.set_faults(delay_ms=0)
        disk.power_loss()
        assert open(path, "rb").read() == b"slow but durable"
