"""raftkv: a follower that catches up from a snapshot never commits its own stale entries.

pysyncobj 0.3.11 takes the leader's commit index from every AppendEntries, the
install-snapshot ones included: the first chunk of a snapshot (or a message without
data) installs nothing, yet the follower commits its own log up to the leader's commit
index. A deposed leader holding entries of its old term that nobody else has commits them
(raft-invariants' log-matching). transport.hold_commit_on_snapshot keeps the follower's
commit index on such messages; `--bug snapshot-commit` restores pysyncobj's behaviour.

The cluster test uses real node processes (3 nodes, compaction after 20 entries) and the
raft-invariants checker on their traces.
"""

from __future__ import annotations

import os

import pytest

from faultbed.checkers.raft import check_traces, read_trace
from faultbed.cluster.systems import OK
from faultbed.cluster.systems.raftkv.direct import DirectCluster
from faultbed.cluster.systems.raftkv.transport import hold_commit_on_snapshot
from tests.systems.conftest import StartCluster, eventually


def test_a_snapshot_message_carries_the_followers_own_commit_index() -> None:
    first_chunk = {"type": "append_entries", "term": 33, "commit_index": 6924, "serialized": (b"x", True, False)}
    no_data = {"type": "append_entries", "term": 33, "commit_index": 6924, "serialized": None}
    for message in (first_chunk, no_data):
        held = hold_commit_on_snapshot(message, 5315)
        assert held == {**message, "commit_index": 5315} and message["commit_index"] == 6924
    regular = {"type": "append_entries", "term": 33, "commit_index": 6924, "entries": [], "prevLogIdx": 7000,
               "prevLogTerm": 33}
    assert hold_commit_on_snapshot(regular, 5315) is regular  # a matched prevLogIdx: the leader's commit applies


def stale_leader_catches_up_from_a_snapshot(cluster: DirectCluster) -> tuple[str, list[str]]:
    """A leader appends entries nobody else gets, is killed; the others commit and compact past
    them; it restarts and catches up from a snapshot. Its name and the checker's violations."""
    old = cluster.wait_leader(20)
    others = [n for n in cluster.nodes if n != old]
    with cluster.client(old) as client:
        for i in range(5):
            assert client.invoke("write", "k", i, 2).type == OK
    for node in others:
        cluster.pause(node)
    with cluster.client(old, timeout=0.5) as client:
        for i in range(5):  # appended by the old leader only, never committed: they time out
            assert client.invoke("write", "stale", i, 0.3).type != OK
    cluster.kill(old)  # its journal keeps the stale entries
    for node in others:
        cluster.resume(node)
    leader = cluster.wait_leader(20, nodes=others)
    with cluster.client(leader) as client:
        for i in range(60):  # compaction after 20 entries: the old leader's indexes are in a snapshot
            assert client.invoke("write", "k", 100 + i, 2).type == OK
    cluster.start(old)
    cluster.wait_up(old, 20)
    with cluster.client(old) as client:
        eventually(lambda: client.invoke("read", "k", None, 2).value == 159, 20, f"{old} to catch up")
    traces = {n: read_trace(os.path.join(cluster.work_dir, "data", n, "raft.trace.jsonl"), n) for n in cluster.nodes}
    snapshots = [line for line in traces[old] if line.record["event"] == "clear"]
    assert snapshots, f"{old} did not catch up from a snapshot: the test did not exercise the fault"
    return old, [f"{v.invariant}: {v.message}" for v in check_traces(traces)]


@pytest.mark.integration
def test_a_follower_catching_up_from_a_snapshot_does_not_commit_its_stale_entries(
        start_raftkv: StartCluster) -> None:
    old, violations = stale_leader_catches_up_from_a_snapshot(start_raftkv(options={"compaction_entries": 20}))
    assert violations == [], f"{old}: {violations}"


@pytest.mark.integration
def test_bug_snapshot_commit_commits_a_stale_entry_that_raft_invariants_finds(start_raftkv: StartCluster) -> None:
    cluster = start_raftkv(bugs=("snapshot-commit",), options={"compaction_entries": 20})
    old, violations = stale_leader_catches_up_from_a_snapshot(cluster)
    assert any(v.startswith("log-matching") for v in violations), violations
