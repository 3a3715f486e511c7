"""Time from start to ready on the local backend: Toxiproxy, the full mesh, N raftkv nodes, a leader."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid

from faultbed.cluster.local import LocalBackend
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import load_system
from faultbed.spec import TestSpec

REPEATS = 3


def time_to_ready(nodes: int) -> tuple[float, float]:
    """(seconds until every process and proxy is up, seconds until every node names one leader)."""
    system = load_system("raftkv")
    spec = TestSpec(nodes=nodes)
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.monotonic()
        with LocalBackend(system, spec, run_dir, uuid.uuid4().hex[:12]) as backend:
            started = time.monotonic() - start
            RunningCluster(system, backend, backend.mesh).wait_ready(timeout=30)
            return started, time.monotonic() - start


def main() -> int:
    for nodes in (3, 5):
        samples = [time_to_ready(nodes) for _ in range(REPEATS)]
        up = statistics.median(s[0] for s in samples)
        ready = statistics.median(s[1] for s in samples)
        print(f"local backend, {nodes} nodes + {nodes * (nodes - 1)} proxies: processes up {up:.2f}s, "
              f"ready (one leader named by all) {ready:.2f}s median of {REPEATS} (goal < 2 s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
