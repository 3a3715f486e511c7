"""raftkv on its own (no mesh): synchronous writes/s from one client, latency, reads/s, failover.

Starts a 3-node cluster of real node processes, measures one synchronous client
against the leader and against a follower (pysyncobj forwards to the leader), then
kills the leader and times the election. Then a 5-node cluster sits idle to show
that nothing campaigns when nothing is wrong. Everything started is stopped.
Goal: at least 80 synchronous writes/s on a 2-core machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

from faultbed.cluster.systems import OK
from faultbed.cluster.systems.raftkv.client import RaftKVClient
from faultbed.cluster.systems.raftkv.direct import DirectCluster

GOAL_WRITES_PER_SECOND = 80.0
SECONDS = 3.0
IDLE_SECONDS = 5.0


def run_ops(client: RaftKVClient, f: str, seconds: float) -> tuple[float, list[float], int]:
    """(ok ops/s, latencies of ok ops in seconds, non-ok count) for `seconds` of back-to-back ops."""
    latencies: list[float] = []
    failures = 0
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        began = time.monotonic()
        outcome = client.invoke(f, f"k{i % 8}", i if f == "write" else None, 2.0)
        if outcome.type == OK:
            latencies.append(time.monotonic() - began)
        else:
            failures += 1
        i += 1
    return len(latencies) / (time.monotonic() - start), latencies, failures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def report(label: str, rate: float, latencies: list[float], failures: int) -> None:
    print(f"  {label:<26} {rate:8.0f} ops/s   median {1000 * statistics.median(latencies):6.2f} ms"
          f"   p99 {1000 * percentile(latencies, 0.99):6.2f} ms   not ok: {failures}", flush=True)


def three_nodes(work_dir: str) -> float:
    """Throughput numbers and failover time; returns leader writes/s."""
    with DirectCluster(work_dir, 3) as cluster:
        leader = cluster.wait_leader(30)
        follower = next(n for n in cluster.nodes if n != leader)
        with cluster.client(leader) as client:
            run_ops(client, "write", 0.5)  # warm up
            writes, latencies, failures = run_ops(client, "write", SECONDS)
            report("writes via leader", writes, latencies, failures)
            reads, latencies, failures = run_ops(client, "read", SECONDS)
            report("reads via leader (log)", reads, latencies, failures)
        with cluster.client(follower) as client:
            rate, latencies, failures = run_ops(client, "write", SECONDS)
            report("writes via follower", rate, latencies, failures)
        cluster.kill(leader)
        killed = time.monotonic()
        new_leader = cluster.wait_leader(15, nodes=[n for n in cluster.nodes if n != leader])
        print(f"  failover: {leader} killed -> {new_leader} leads after {time.monotonic() - killed:.2f} s",
              flush=True)
    return writes


def five_nodes_idle(work_dir: str) -> int:
    """Term changes while a healthy 5-node cluster sits idle (should be 0)."""
    with DirectCluster(work_dir, 5) as cluster:
        leader = cluster.wait_leader(30)
        before = {n: (cluster.status(n) or {}).get("term") for n in cluster.nodes}
        time.sleep(IDLE_SECONDS)  # the measurement is "nothing happens for this long"
        after = {n: (cluster.status(n) or {}).get("term") for n in cluster.nodes}
        changed = sum(1 for n in cluster.nodes if before[n] != after[n])
        print(f"  5 nodes idle {IDLE_SECONDS:.0f} s: leader {leader}, nodes whose term changed: {changed}",
              flush=True)
    return changed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-raftkv-") as tmp:
        writes = three_nodes(f"{tmp}/three")
        unstable = five_nodes_idle(f"{tmp}/five")
    ok = writes >= GOAL_WRITES_PER_SECOND and unstable == 0
    print(f"  goal >= {GOAL_WRITES_PER_SECOND:.0f} synchronous writes/s, stable idle: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
