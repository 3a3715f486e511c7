"""faultbed-diskfs's overhead: fsync'd writes/s and raftkv writes/s with and without it, in one run.

1. One process appends 4 KiB and fsyncs, back to back for a few seconds: in a plain
   directory (ext4 or whatever /tmp is: a real fsync), over faultbed-diskfs (fsync makes
   the overlay durable in the backing directory, no real fsync), and over faultbed-diskfs
   with -sync-backing (both).
2. A 3-node raftkv cluster (DirectCluster, no mesh), one synchronous client on the leader:
   data in plain directories with the journal msync'd (the default) and without
   (the no-journal-sync bug), then over faultbed-diskfs with the journal msync'd.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from bench.raftkv import report, run_ops
from faultbed.cluster.disk import DiskMount, check_available
from faultbed.cluster.systems.raftkv.direct import DirectCluster
from faultbed.errors import SetupError

SECONDS = 3.0
BLOCK = b"x" * 4096


def fsynced_writes(directory: str, seconds: float = SECONDS) -> float:
    """4 KiB write + fsync, back to back: fsyncs per second."""
    path = os.path.join(directory, "bench.dat")
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            os.write(fd, BLOCK)
            os.fsync(fd)
            count += 1
        elapsed = time.monotonic() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return count / elapsed


def raftkv_writes(work_dir: str, label: str, bugs: tuple[str, ...] = ()) -> float:
    with DirectCluster(work_dir, 3, bugs=bugs) as cluster:
        leader = cluster.wait_leader(30)
        with cluster.client(leader) as client:
            run_ops(client, "write", 0.5)
            rate, latencies, failures = run_ops(client, "write", SECONDS)
    report(f"raftkv {label}:", rate, latencies, failures)
    return rate


def mounted_raftkv(work_dir: str) -> float:
    """raftkv with each node's data directory over faultbed-diskfs (the journal msync'd)."""
    mounts = [DiskMount(n, os.path.join(work_dir, "disk", n), os.path.join(work_dir, "data", n))
              for n in ("n1", "n2", "n3")]
    try:
        for mount in mounts:
            mount.__enter__()
        return raftkv_writes(work_dir, "diskfs+msync")
    finally:
        for mount in mounts:
            mount.unmount()


def main() -> int:
    try:
        check_available()
    except SetupError as exc:
        print(f"  skipped: {exc}")
        return 1
    with tempfile.TemporaryDirectory(prefix="faultbed-bench-disk-") as tmp:
        plain = os.path.join(tmp, "plain")
        os.makedirs(plain)
        print(f"  {'4 KiB write+fsync, plain dir:':<40} {fsynced_writes(plain):8.0f} /s", flush=True)
        for sync_backing in (False, True):
            mount = DiskMount("bench", os.path.join(tmp, f"disk{int(sync_backing)}"),
                              os.path.join(tmp, f"mnt{int(sync_backing)}"), sync_backing=sync_backing)
            with mount:
                rate = fsynced_writes(mount.mountpoint)
            label = "4 KiB write+fsync, diskfs" + (" -sync-backing:" if sync_backing else ":")
            print(f"  {label:<40} {rate:8.0f} /s", flush=True)
        raftkv_writes(os.path.join(tmp, "raft-plain"), "plain+msync")
        raftkv_writes(os.path.join(tmp, "raft-nosync"), "plain, no sync", bugs=("no-journal-sync",))
        mounted_raftkv(os.path.join(tmp, "raft-diskfs"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
