"""An example chaos suite: the Raft KV store under each kind of fault, checked for linearizability.

    .venv/bin/python -m pytest examples/chaos_suite -n 2                 # passes: no anomaly
    .venv/bin/python -m pytest examples/chaos_suite --faultbed-bug stale-reads   # must fail

Every test is a whole faultbed run (3 nodes, 5 s, ~50 ops/s): an anomaly fails it
with the verdict, the results directory and the command that replays it. The last
test builds a run from the plugin's pieces (cluster, history, nemesis, check).
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.faultbed(system="raftkv", workload="register", nodes=3, time_limit=5.0, rate=50.0,
                                  concurrency=4, nemesis_interval=2.0, seed=11)


@pytest.mark.faultbed(nemesis=["partition"])
def test_register_is_linearizable_under_partitions(run_test):
    run_test()


@pytest.mark.faultbed(nemesis=["kill"])
def test_register_is_linearizable_when_nodes_are_killed(run_test):
    run_test()


@pytest.mark.faultbed(nemesis=["pause"])
def test_register_is_linearizable_when_nodes_are_paused(run_test):
    run_test()


@pytest.mark.faultbed(nemesis=["partition-ring", "latency"])
def test_register_is_linearizable_under_ring_partitions_and_latency(run_test):
    run_test()


@pytest.mark.faultbed(nemesis=["partition-isolate"], nemesis_interval=2.0, time_limit=8.0)
def test_reads_and_writes_on_every_node_are_linearizable_piece_by_piece(
        faultbed_cluster, faultbed_history, faultbed_nemesis, faultbed_check):
    from faultbed.worker import Worker
    from faultbed.workloads import PlannedOp

    nodes = faultbed_cluster.nodes
    # a short op timeout: the cut-off node keeps serving reads while it is isolated
    workers = [Worker(i, i, len(nodes), faultbed_cluster, faultbed_history, node, op_timeout=0.5)
               for i, node in enumerate(nodes)]
    faultbed_nemesis.start()
    deadline, value = time.monotonic() + 8.0, 0  # two isolations of 2 s
    while time.monotonic() < deadline:
        for worker in workers:
            value += 1  # every value written once: a stale read cannot pass for an unfinished write
            worker.execute(PlannedOp("write", "k0", value))
            worker.execute(PlannedOp("read", "k0"))
        time.sleep(0.05)  # about 100 ops/s: enough to see the faults, little CPU
    faultbed_nemesis.heal_all()
    for worker in workers:
        worker.execute(PlannedOp("read", "k0"))
        worker.close()
    outcome = faultbed_check()
    assert outcome.counts["ok"] > 0, "no operation succeeded: the test proved nothing"
