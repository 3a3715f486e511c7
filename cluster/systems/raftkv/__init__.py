"""raftkv: a Raft key-value store on pysyncobj, one OS process per node.

Layout of the package (each module's docstring says more):

    node.py       the node process: parses the NodePlan, starts replica + client port
    replica.py    pysyncobj set up (timers, journal, vote restore) and ticked by our thread
    transport.py  peers dialled through the mesh under their identities; durable vote;
                  term-tagged and no-op-gated acknowledgements (fixes of pysyncobj 0.3.11)
    state.py      the replicated state machine: map, idempotency table, ledger
    server.py     the client port: requests -> replicated commands -> honest outcomes
    protocol.py   the newline-delimited JSON wire format
    client.py     the Client the runner uses
    direct.py     a cluster of node processes without the mesh, for tests and benchmarks

Operations (string keys; a missing key reads as null): read, write, cas [from, to],
append (string append, missing = ""), apply {"idempotency_key", "payload"} -> ledger
position, read-ledger -> list of idempotency keys. All of them, reads included, go
through the Raft log and answer after commit and apply; followers let pysyncobj forward
the command to the leader (no client-side redirect).

Durability: the journal (pysyncobj's mmap FileJournal), snapshots and the vote live in
the node's data_dir. The vote is fsync'd before it is sent; the journal is msync'd
before any message leaves the node (durability.py), so an acknowledged entry survives
a power loss. pysyncobj alone never msyncs it (the `no-journal-sync` bug).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Mapping

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems import SystemOption, SystemTraits
from faultbed.cluster.systems.raftkv.client import RaftKVClient

# pysyncobj 0.3.11's own behaviour, one switch per fix in transport.py (shared by the broker).
RAFT_BUGS: Mapping[str, str] = {
    "volatile-vote": "currentTerm and votedFor are not persisted (pysyncobj #84): a restarted node starts "
                     "at term 0 and may vote twice in a term or reuse a term",
    "untagged-acks": "AppendEntries replies carry no term: a leader counts a reply meant for an earlier term",
    "old-term-commit": "a leader commits by counting replicas without a current-term entry "
                       "(Raft paper Figure 8, pysyncobj #169)",
    "commit-regress": "a follower takes a lower leader commit index than its own (pysyncobj #166)",
    "resend-truncate": "a follower deletes every entry after AppendEntries' prevLogIdx, also those it holds "
                       "with the same term: a range sent again takes committed entries away for a while",
    "snapshot-commit": "a follower takes the leader's commit index from an install-snapshot message that "
                       "installs nothing (a first chunk, or no data): it commits its own, possibly stale, log",
    "snapshot-reinstall": "a follower installs a snapshot whose last entry it already holds: its log is "
                          "cleared and its state reloaded, its commit index going back",
    "match-regress": "a leader takes a success reply below a peer's match index at face value: the match "
                     "index goes back within a term (a reply about an older position, such as a held snapshot's)",
    "vanilla": "all of volatile-vote, untagged-acks, old-term-commit, commit-regress, resend-truncate, "
               "snapshot-commit, snapshot-reinstall, match-regress, and the follower acknowledgement one "
               "index short: pysyncobj 0.3.11 as shipped",
}
VANILLA = ("volatile-vote", "untagged-acks", "old-term-commit", "commit-regress", "resend-truncate",
           "snapshot-commit", "snapshot-reinstall", "match-regress")


def raft_bugs(bugs: frozenset[str]) -> frozenset[str]:
    """The pysyncobj switches `bugs` turns on, `vanilla` expanded (plus "short-ack", vanilla only)."""
    if "vanilla" in bugs:
        return frozenset(VANILLA) | {"short-ack"}
    return frozenset(bugs) & frozenset(VANILLA)


BUGS: Mapping[str, str] = {
    "stale-reads": "every node answers reads from its local replica, without the log or a leader check",
    "ack-before-commit": "write, cas and append answer ok as soon as submitted, before Raft commits them",
    "no-dedupe": "apply ignores idempotency keys: every apply appends to the ledger",
    "local-dedupe": "the idempotency table lives only in the memory of the node that received the apply, "
                    "not in the replicated state: after a restart or on another node, duplicates happen",
    "no-journal-sync": "the Raft journal is never msync'd (pysyncobj's own behaviour): entries survive SIGKILL "
                       "but a power loss drops acknowledged ones",
    **RAFT_BUGS,
}


# How much of a lagging follower's backlog one AppendEntries carries. raftkv sends all of it
# (so a follower that acknowledges also holds the leader's current-term no-op); small makes
# pysyncobj send about 1 KiB of entries per message (a few register commands): the window in
# which Figure 8's unsafe commit (--bug old-term-commit) can count an old-term copy. Not smaller:
# pysyncobj 0.3.11 sends an entry at least as big as the batch in chunks and ends the chunks
# early (it compares with the command's length, not the pickled entry's): the follower unpickles
# a truncated entry and its tick fails on every retry.
APPEND_BATCH = SystemOption("append-batch", ("backlog", "small"),
                            "small: AppendEntries carry about 1 KiB of entries (lagging followers catch up "
                            "a few entries at a time)")
APPEND_BATCH_BYTES = {"backlog": 2 ** 22, "small": 1024}  # pysyncobj's appendEntriesBatchSizeBytes

# How many log entries a node keeps before it compacts them into a snapshot (pysyncobj's
# logCompactionMinEntries). Small makes followers cut off by a fault catch up from a snapshot
# often (install-snapshot, the `snapshot-commit` switch) instead of once in 5000 entries.
COMPACTION = SystemOption("compaction", ("5000", "200", "50"),
                          "log entries kept before a snapshot: small values make lagging followers catch up "
                          "from snapshots often")


class RaftKVSystem:
    """The System the runner and backends see."""

    name = "raftkv"
    description = "Raft key-value store on pysyncobj (faultbed's own)"
    ports = ("raft", "client")
    peer_ports = ("raft",)
    client_port = "client"
    bugs = BUGS
    workloads = ("register", "idempotency")
    traits = SystemTraits(data_files=("raft.journal", "raft.dump"), durable=True, raft_trace="raft.trace.jsonl",
                          options=(APPEND_BATCH, COMPACTION))

    def command(self, plan: NodePlan) -> list[str]:
        config = json.dumps(asdict(plan), separators=(",", ":"), sort_keys=True)
        return [plan.python, "-m", "faultbed.cluster.systems.raftkv.node", "--config", config]

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = (), options: Mapping[str, str] | None = None) -> RaftKVClient:
        return RaftKVClient(address, node, timeout)  # the options are the nodes' business


SYSTEM = RaftKVSystem()
