"""How fast does the Docker backend bring a cluster up, and what do its images cost to build?

Times raftkv from `DockerBackend` entry to a leader every node agrees on, for 3 and
5 nodes (goal: under 10 s for 5), and the teardown. Times `docker/build` when
everything is cached, and from scratch under a temporary image repository (a
minute of mmdebstrap and builds; FAULTBED_BENCH_DOCKER_SCRATCH=0 skips it).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from faultbed.cluster.docker import DockerBackend
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import load_system
from faultbed.errors import FaultbedError
from faultbed.spec import TestSpec

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "docker" / "build"
READY_GOAL_S = 10.0
READY_TIMEOUT_S = 60.0
ROUNDS = 3
SCRATCH_ENV = "FAULTBED_BENCH_DOCKER_SCRATCH"


def time_ready(nodes: int) -> tuple[float, float, float]:
    """(containers started, cluster ready, teardown) in seconds for one raftkv cluster."""
    system = load_system("raftkv")
    spec = TestSpec(system="raftkv", backend="docker", nodes=nodes)
    with tempfile.TemporaryDirectory(prefix="faultbed-bench-docker-") as run_dir:
        started = time.perf_counter()
        backend = DockerBackend(system, spec, run_dir, "bench-" + uuid.uuid4().hex[:8])
        with backend:
            up = time.perf_counter()
            RunningCluster(system, backend, backend.mesh).wait_ready(READY_TIMEOUT_S)
            ready = time.perf_counter()
        done = time.perf_counter()
    return up - started, ready - started, done - ready


def time_build(*args: str) -> tuple[float, dict[str, object]]:
    """Seconds for `docker/build args --json`, and its report."""
    started = time.perf_counter()
    proc = subprocess.run([str(BUILD), "--json", *args], capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise FaultbedError(f"docker/build {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return elapsed, json.loads(proc.stdout.strip().splitlines()[-1])


def scratch_build() -> str:
    repository = f"faultbed-bench-{uuid.uuid4().hex[:8]}"
    try:
        seconds, report = time_build("--repository", repository, "--no-cache")
    finally:
        subprocess.run([str(BUILD), "--repository", repository, "--remove"], capture_output=True, timeout=600)
    parts = ", ".join(f"{kind} {float(report[f'{kind}_seconds']):.1f} s"  # type: ignore[arg-type]
                      for kind in ("base", "toxiproxy", "node"))
    return f"{seconds:.1f} s ({parts})"


def main() -> int:
    try:
        cached, _ = time_build()
        print(f"image build, cached: {cached:.1f} s")
        if os.environ.get(SCRATCH_ENV, "1") != "0":
            print(f"image build, from scratch: {scratch_build()}", flush=True)
        else:
            print(f"image build, from scratch: not measured ({SCRATCH_ENV}=0)")
        met = True
        for nodes in (3, 5):
            rounds = [time_ready(nodes) for _ in range(ROUNDS)]
            up, ready, down = (statistics.median(r[i] for r in rounds) for i in range(3))
            goal = ""
            if nodes == 5:
                met = ready < READY_GOAL_S
                goal = f" (goal < {READY_GOAL_S:.0f} s)"
            print(f"{nodes} nodes: containers up {up:.1f} s, ready {ready:.1f} s{goal}, "
                  f"teardown {down:.1f} s (median of {ROUNDS})")
    except FaultbedError as exc:
        print(f"docker: {exc}")
        return 1
    print("docker: goals met" if met else "docker: GOALS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
