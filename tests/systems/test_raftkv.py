"""raftkv: its pieces on their own, then real 3-node clusters of processes (no mesh).

Cluster tests SIGKILL, SIGSTOP and restart real node processes; every process is
killed at teardown (conftest.start_raftkv / DirectCluster.close).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any, Iterator

import pytest

from faultbed.cluster.systems import FAIL, INFO, OK
from faultbed.cluster.systems.raftkv import BUGS, SYSTEM
from faultbed.cluster.systems.raftkv.direct import DirectCluster
from faultbed.cluster.systems.raftkv.node import NodeConfig
from faultbed.cluster.systems.raftkv.state import KVState
from faultbed.cluster.systems.raftkv.transport import TERM_TAG, MeshNode, VoteStore, gate_ack
from tests.systems.conftest import StartCluster, eventually

integration = pytest.mark.integration


def followers(cluster: DirectCluster, leader: str) -> list[str]:
    return [n for n in cluster.nodes if n != leader]


def apply_op(key: str) -> dict[str, Any]:
    return {"idempotency_key": key, "payload": 1}


# -- pieces, no processes ---------------------------------------------------------

def test_state_machine_reads_null_for_missing_keys_and_appends_to_empty_string() -> None:
    state = KVState()
    assert state.read("k", _doApply=True) is None
    assert state.append("k", "ab", _doApply=True) == "ab"
    assert state.cas("k", "ab", "x", _doApply=True) is True
    assert state.cas("k", "ab", "y", _doApply=True) is False
    state.write("n", 1, _doApply=True)
    assert state.append("n", "x", _doApply=True) is None and state.read("n", _doApply=True) == 1


def test_state_machine_dedupes_applies_unless_told_not_to() -> None:
    deduped, duplicated = KVState(dedupe=True), KVState(dedupe=False)
    for state in (deduped, duplicated):
        for key in ("a", "b", "a"):
            state.apply(key, _doApply=True)
    assert deduped.read_ledger(_doApply=True) == ["a", "b"]
    assert duplicated.read_ledger(_doApply=True) == ["a", "b", "a"]


def test_ack_gate_drops_other_terms_and_downgrades_acks_below_the_election_noop() -> None:
    ack = {"type": "next_node_idx", "next_node_idx": 10, "success": True, "reset": False, TERM_TAG: 3}
    assert gate_ack(ack, term=4, noop_index=9) is None
    assert gate_ack(ack, term=3, noop_index=9) == ack
    assert gate_ack(ack, term=3, noop_index=10)["success"] is False  # type: ignore[index]
    assert gate_ack({k: v for k, v in ack.items() if k != TERM_TAG}, term=3, noop_index=1) is None
    # a success reply below the peer's match index is about an older position: ignored
    assert gate_ack(ack, term=3, noop_index=1, matched=10) is None
    assert gate_ack(ack, term=3, noop_index=1, matched=9) == ack
    failed = {**ack, "success": False, "reset": True}
    assert gate_ack(failed, term=3, noop_index=1, matched=10) == failed  # a reset still resets
    # pysyncobj's own behaviour, one switch per gate
    assert gate_ack(ack, term=4, noop_index=9, bugs=frozenset({"untagged-acks"})) == ack
    assert gate_ack(ack, term=3, noop_index=10, bugs=frozenset({"old-term-commit"})) == ack
    assert gate_ack(ack, term=3, noop_index=1, bugs=frozenset({"match-regress"}), matched=10) == ack


def test_vanilla_is_every_pysyncobj_switch_plus_the_short_ack() -> None:
    from faultbed.cluster.systems.raftkv import raft_bugs

    assert raft_bugs(frozenset({"vanilla"})) == {"volatile-vote", "untagged-acks", "old-term-commit",
                                                 "commit-regress", "resend-truncate", "snapshot-commit",
                                                 "snapshot-reinstall", "match-regress", "short-ack"}
    assert raft_bugs(frozenset({"volatile-vote", "stale-reads"})) == {"volatile-vote"}


def test_a_follower_never_takes_a_lower_commit_index() -> None:
    from faultbed.cluster.systems.raftkv.transport import keep_commit

    message = {"type": "append_entries", "commit_index": 478, "term": 5}
    assert keep_commit(message, 483) == {**message, "commit_index": 483} and message["commit_index"] == 478
    assert keep_commit(message, 470) is message


def test_vote_store_round_trips_term_and_vote(tmp_path: Any) -> None:
    path = str(tmp_path / "vote.json")
    assert VoteStore(path).load() == (0, None)
    VoteStore(path).save(7, "127.0.0.1:2000")
    assert VoteStore(path).load() == (7, "127.0.0.1:2000")


def test_mesh_node_keeps_its_identity_but_dials_the_proxy() -> None:
    node = MeshNode("127.0.0.1:2000", "127.0.0.1:3000")
    assert (node.id, node.address) == ("127.0.0.1:2000", "127.0.0.1:2000")
    assert (node.ip, node.port) == ("127.0.0.1", 3000)
    assert node == MeshNode("127.0.0.1:2000")


def test_command_serializes_the_plan_and_the_node_parses_it(tmp_path: Any) -> None:
    cluster = DirectCluster(str(tmp_path), 3, bugs=("stale-reads",), options={"raft": {"heartbeat": 0.04}})
    try:
        command = SYSTEM.command(cluster.plans["n2"])
        assert command[:4] == [sys.executable, "-m", "faultbed.cluster.systems.raftkv.node", "--config"]
        config = NodeConfig.from_plan_json(command[4])
        assert config.name == "n2" and config.bugs == {"stale-reads"}
        assert config.dial == {"n1": cluster.plans["n1"].identities["n1"], "n3": cluster.plans["n3"].identities["n3"]}
        assert config.replica_config().timers.heartbeat == 0.04
    finally:
        cluster.close()


def test_node_refuses_a_bad_config_with_exit_code_3(tmp_path: Any) -> None:
    cluster = DirectCluster(str(tmp_path), 1)
    try:
        bad = json.loads(SYSTEM.command(replace(cluster.plans["n1"], bugs=("no-such-bug",)))[4])
        for config in ("{}", json.dumps(bad)):
            done = subprocess.run([sys.executable, "-m", "faultbed.cluster.systems.raftkv.node", "--config", config],
                                  capture_output=True, timeout=30)
            assert done.returncode == 3, done.stderr
    finally:
        cluster.close()
    assert set(SYSTEM.bugs) == set(BUGS) == {"stale-reads", "ack-before-commit", "no-dedupe", "local-dedupe",
                                          "no-journal-sync", "volatile-vote", "untagged-acks", "old-term-commit",
                                          "commit-regress", "resend-truncate", "snapshot-commit",
                                          "snapshot-reinstall", "match-regress", "vanilla"}


# -- a healthy cluster, shared by the tests that do not break it ----------------------

@pytest.fixture(scope="module")
def healthy(tmp_path_factory: Any) -> Iterator[tuple[DirectCluster, str]]:
    with DirectCluster(str(tmp_path_factory.mktemp("healthy")), 3, python=sys.executable) as cluster:
        yield cluster, cluster.wait_leader(20)


@integration
def test_register_operations_have_kv_semantics_through_follower_and_leader(healthy: Any) -> None:
    cluster, leader = healthy
    for node in (followers(cluster, leader)[0], leader):
        key, text = f"k-{node}", f"s-{node}"
        with cluster.client(node) as client:
            assert client.invoke("read", key, None, 2).type == OK
            assert client.invoke("read", key, None, 2).value is None
            assert client.invoke("write", key, 1, 2).type == OK
            assert client.invoke("cas", key, [1, 2], 2).type == OK
            mismatch = client.invoke("cas", key, [1, 3], 2)
            assert (mismatch.type, mismatch.error) == (FAIL, "cas-mismatch")
            assert client.invoke("append", text, "ab", 2).type == OK
            assert client.invoke("append", text, "cd", 2).type == OK
        with cluster.client(followers(cluster, leader)[1]) as other:
            assert other.invoke("read", key, None, 2).value == 2
            assert other.invoke("read", text, None, 2).value == "abcd"


@integration
def test_apply_returns_the_first_ledger_position_for_a_repeated_key_on_any_node(healthy: Any) -> None:
    cluster, leader = healthy
    follower = followers(cluster, leader)[0]
    with cluster.client(follower) as via_follower, cluster.client(leader) as via_leader:
        first = via_follower.invoke("apply", None, apply_op("dedupe-a"), 2)
        again = via_leader.invoke("apply", None, apply_op("dedupe-a"), 2)
        other = via_leader.invoke("apply", None, apply_op("dedupe-b"), 2)
        ledger = via_follower.invoke("read-ledger", None, None, 2)
    assert first.type == again.type == other.type == ledger.type == OK
    assert isinstance(first.value, int) and again.value == first.value and other.value == first.value + 1
    assert ledger.value[first.value:] == ["dedupe-a", "dedupe-b"]


@integration
def test_status_names_the_leader_by_node_name_and_requests_it_cannot_take_fail(healthy: Any) -> None:
    cluster, leader = healthy
    statuses = {n: cluster.status(n) for n in cluster.nodes}
    assert {s["leader"] for s in statuses.values() if s} == {leader}
    assert statuses[leader]["state"] == "leader"
    assert {"node", "term", "commit_index"} <= set(statuses[leader])
    with cluster.client(leader) as client:
        assert client.invoke("frobnicate", "k", None, 2).type == FAIL
        assert client.invoke("cas", "k", "not-a-pair", 2).type == FAIL
        assert client.invoke("append", "k", 5, 2).type == FAIL


# -- outcomes under faults ----------------------------------------------------------

@integration
def test_timeouts_are_info_for_writes_fail_for_reads_and_late_answers_are_never_reused(
        start_raftkv: StartCluster) -> None:
    cluster = start_raftkv()
    follower = followers(cluster, cluster.wait_leader(20))[0]
    client = cluster.client(follower)
    assert client.invoke("write", "k", "before", 2).type == OK
    cluster.pause(follower)
    write = client.invoke("write", "k", "during", 0.3)
    read = client.invoke("read", "k", None, 0.3)
    assert (write.type, write.error, read.type) == (INFO, "timeout", FAIL)
    cluster.resume(follower)
    # The paused node now answers the old requests on dropped connections; a client that
    # took the late `ok` of the write for this cas would report ok.
    cas = client.invoke("cas", "k", ["neither", "x"], 2)
    assert (cas.type, cas.error) == (FAIL, "cas-mismatch")
    cluster.kill(follower)
    refused = client.invoke("write", "k", "after", 1)
    assert refused.type == FAIL and refused.error and refused.error.startswith("connect")
    with pytest.raises(OSError):
        cluster.client(follower, timeout=1)
    client.close()


@integration
def test_a_leader_without_majority_never_acknowledges_and_fails_fast_once_it_steps_down(
        start_raftkv: StartCluster) -> None:
    cluster = start_raftkv()
    leader = cluster.wait_leader(20)
    with cluster.client(leader) as client:
        for node in followers(cluster, leader):
            cluster.pause(node)
        maybe = client.invoke("write", "k", "maybe", 0.5)
        assert (maybe.type, maybe.error) == (INFO, "timeout")
        eventually(lambda: (cluster.status(leader) or {"leader": leader})["leader"] is None, 5,
                   "the isolated leader to step down")
        never = client.invoke("write", "k", "never", 1)
        assert (never.type, never.error) == (FAIL, "no-leader")
        for node in followers(cluster, leader):
            cluster.resume(node)
        cluster.wait_leader(20)
        assert client.invoke("read", "k", None, 2).value in (None, "maybe")


@integration
def test_killing_the_leader_elects_a_new_one_that_keeps_committed_writes(start_raftkv: StartCluster) -> None:
    cluster = start_raftkv()
    leader = cluster.wait_leader(20)
    with cluster.client(leader) as client:
        for i in range(10):
            assert client.invoke("write", f"k{i}", i, 2).type == OK
    survivors = followers(cluster, leader)
    cluster.kill(leader)
    killed_at = time.monotonic()
    new_leader = cluster.wait_leader(10, nodes=survivors)
    failover = time.monotonic() - killed_at
    assert new_leader in survivors and failover < 5, f"failover took {failover:.1f}s"
    for node in survivors:
        with cluster.client(node) as client:
            assert [client.invoke("read", f"k{i}", None, 2).value for i in range(10)] == list(range(10))
    cluster.start(leader)
    cluster.wait_leader(20)
    with cluster.client(leader) as client:
        assert client.invoke("read", "k9", None, 2).value == 9


@integration
def test_nodes_killed_with_sigkill_recover_data_and_term_from_their_data_dirs(start_raftkv: StartCluster) -> None:
    # Compaction after 20 entries, so recovery goes through the snapshot and the journal.
    cluster = start_raftkv(options={"compaction_entries": 20})
    leader = cluster.wait_leader(20)
    follower = followers(cluster, leader)[0]
    with cluster.client(leader) as client:
        for i in range(40):
            assert client.invoke("write", f"k{i}", i, 2).type == OK
        cluster.kill(follower)
        for i in range(30):  # the leader compacts these away: the follower catches up from a snapshot
            assert client.invoke("write", "late", i, 2).type == OK
    cluster.start(follower)
    cluster.wait_up(follower)
    with cluster.client(follower) as client:
        eventually(lambda: client.invoke("read", "late", None, 2).value == 29, 10, f"{follower} to catch up")
    term = max(s["term"] for s in (cluster.status(n) for n in cluster.nodes) if s)

    for node in cluster.nodes:
        cluster.kill(node)
    cluster.start("n1")  # alone: whatever it knows comes from its own disk
    alone = cluster.wait_up("n1")
    assert alone["term"] >= term, f"term went back from {term} to {alone['term']}: vote not persisted"
    for node in ("n2", "n3"):
        cluster.start(node)
    cluster.wait_leader(20)
    for node in cluster.nodes:
        with cluster.client(node) as client:
            assert [client.invoke("read", f"k{i}", None, 2).value for i in range(40)] == list(range(40))
            assert client.invoke("read", "late", None, 2).value == 29


# -- planted bugs -----------------------------------------------------------------

@integration
def test_bug_ack_before_commit_acknowledges_a_write_that_is_then_lost(start_raftkv: StartCluster) -> None:
    cluster = start_raftkv(bugs=("ack-before-commit",))
    leader = cluster.wait_leader(20)
    for node in followers(cluster, leader):
        cluster.pause(node)
    eventually(lambda: (cluster.status(leader) or {"leader": leader})["leader"] is None, 5,
               "the isolated leader to step down")
    with cluster.client(leader) as client:
        lost = client.invoke("write", "k", "lost", 1)
        assert lost.type == OK  # a correct build answers fail "no-leader" here
        # The write only sits in pysyncobj's queue until the next tick drops it. Were the
        # followers back first, that tick could forward it to their new leader (CI saw it
        # committed). A read queued behind it fails only once the tick has drained the queue.
        queued_behind = client.invoke("read", "k", None, 2)
        assert (queued_behind.type, queued_behind.error) == (FAIL, "no-leader")
        for node in followers(cluster, leader):
            cluster.resume(node)
        cluster.wait_leader(20)
        assert client.invoke("read", "k", None, 2).value is None


@integration
def test_bug_stale_reads_answers_from_a_replica_cut_off_from_the_majority(start_raftkv: StartCluster) -> None:
    cluster = start_raftkv(bugs=("stale-reads",))
    leader = cluster.wait_leader(20)
    stale, other = followers(cluster, leader)
    with cluster.client(leader) as client:
        assert client.invoke("write", "k", 1, 2).type == OK
        with cluster.client(stale) as local:
            eventually(lambda: local.invoke("read", "k", None, 1).value == 1, 5, f"{stale} to apply k=1")
        cluster.kill(stale)
        assert client.invoke("write", "k", 2, 2).type == OK  # committed by leader + other
    cluster.pause(leader)
    cluster.pause(other)
    cluster.start(stale)  # can reach nobody: it only has what it had before the kill
    cluster.wait_up(stale)
    with cluster.client(stale) as local:
        read = eventually(lambda: local.invoke("read", "k", None, 1), 10, f"{stale} to answer")
    assert read.type == OK and read.value != 2, read  # a linearizable read must see 2 or fail


@integration
def test_bug_no_dedupe_appends_every_apply_of_a_key(start_raftkv: StartCluster) -> None:
    cluster = start_raftkv(bugs=("no-dedupe",))
    with cluster.client(cluster.wait_leader(20)) as client:
        positions = [client.invoke("apply", None, apply_op("a"), 2).value for _ in range(2)]
        assert positions == [0, 1]
        assert client.invoke("read-ledger", None, None, 2).value == ["a", "a"]


@integration
def test_bug_local_dedupe_forgets_keys_on_restart_and_on_other_nodes(start_raftkv: StartCluster) -> None:
    cluster = start_raftkv(bugs=("local-dedupe",))
    leader = cluster.wait_leader(20)
    with cluster.client(leader) as client:
        first = client.invoke("apply", None, apply_op("a"), 2).value
        assert client.invoke("apply", None, apply_op("a"), 2).value == first  # same process: deduped
    with cluster.client(followers(cluster, leader)[0]) as client:
        assert client.invoke("apply", None, apply_op("a"), 2).value != first
    cluster.restart(leader)
    cluster.wait_leader(20)
    with cluster.client(leader) as client:
        assert client.invoke("apply", None, apply_op("a"), 2).value not in (None, first)
        assert client.invoke("read-ledger", None, None, 2).value == ["a", "a", "a"]


def test_the_append_batch_option_reaches_pysyncobjs_batch_size() -> None:
    """--option append-batch=small: about 1 KiB of entries per AppendEntries; default: the whole backlog."""
    plan = {"name": "n1", "listen_host": "127.0.0.1", "ports": {"raft": 1, "client": 2},
            "identities": {"n1": "127.0.0.1:1"}, "dial": {}, "data_dir": "/nonexistent"}
    one = NodeConfig.from_plan_json(json.dumps({**plan, "options": {"system": {"append-batch": "small"}}}))
    assert one.replica_config().append_batch_bytes == 1024
    assert NodeConfig.from_plan_json(json.dumps(plan)).replica_config().append_batch_bytes == 2 ** 22


def test_the_compaction_option_reaches_pysyncobjs_compaction_threshold() -> None:
    """--option compaction=50: a snapshot every 50 entries; default 5000; tests set options["compaction_entries"]."""
    plan = {"name": "n1", "listen_host": "127.0.0.1", "ports": {"raft": 1, "client": 2},
            "identities": {"n1": "127.0.0.1:1"}, "dial": {}, "data_dir": "/nonexistent"}
    chosen = NodeConfig.from_plan_json(json.dumps({**plan, "options": {"system": {"compaction": "50"}}}))
    assert chosen.replica_config().compaction_entries == 50
    assert NodeConfig.from_plan_json(json.dumps(plan)).replica_config().compaction_entries == 5000
    direct = NodeConfig.from_plan_json(json.dumps({**plan, "options": {"compaction_entries": 20}}))
    assert direct.replica_config().compaction_entries == 20
