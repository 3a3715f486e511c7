"""Harness recording throughput: the real client loop, Worker and HistoryWriter against a no-op client.

Measures what faultbed itself costs per operation (plan generation, invoke +
completion events written and flushed per line), with no system in the way.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from typing import Any

from faultbed.cluster.systems import OK, Outcome
from faultbed.history import HistoryWriter, read_history
from faultbed.worker import run_worker
from faultbed.spec import TestSpec
from faultbed.worker import Worker
from faultbed.workloads.register import WORKLOAD


class NoopClient:
    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        return Outcome(OK, value, node="n1")

    def status(self, timeout: float) -> dict[str, Any]:
        return {"leader": "n1"}

    def close(self) -> None:
        pass


class NoopCluster:
    nodes = ["n1"]

    def client(self, node: str, timeout: float = 1.0) -> NoopClient:
        return NoopClient()


def measure(concurrency: int, seconds: float) -> tuple[float, int]:
    spec = TestSpec(concurrency=concurrency, rate=0, time_limit=seconds, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "history.jsonl")
        with HistoryWriter(path) as history:
            workers = [Worker(i, i, concurrency, NoopCluster(), history, "n1", 1.0)  # type: ignore[arg-type]
                       for i in range(concurrency)]
            stop = threading.Event()
            start = time.monotonic()
            deadline = start + seconds
            threads = [threading.Thread(target=run_worker, args=(spec, WORKLOAD, w, stop, deadline))
                       for w in workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
        ops = sum(w.counts.ok for w in workers)
        assert len(read_history(path)) == 2 * ops
    return ops / elapsed, ops


def main() -> int:
    for concurrency in (1, 10):
        rate, ops = measure(concurrency, 3.0)
        print(f"harness recording throughput, no-op client, {concurrency:2d} workers: "
              f"{rate:,.0f} ops/s ({ops} ops, 2 events each; goal >= 20,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
