"""A follower that is sent a range of entries again keeps what it holds (transport.skip_held).

pysyncobj 0.3.11's follower deletes every entry after an AppendEntries' prevLogIdx when
its log goes on, also entries it holds with the same term, and then sets its commit index
to min(leader's, last index): a leader that sends a lagging follower a range again made
it lose committed entries for a while (docs/RAFT-TRACE.md, append-batch=small). These
tests drive a real pysyncobj follower (a raftkv Replica, not ticked, no network) through
raftkv's transport with hand-made AppendEntries messages, record its replies, and check
its log, its commit index and its Raft trace with raft-invariants. With
`resend-truncate` (pysyncobj's own behaviour) the same messages show the fault.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Iterator

import pytest
from pysyncobj.transport import TCPTransport

from faultbed.checkers.raft import check_traces, read_trace
from faultbed.cluster.systems.raftkv import raft_bugs
from faultbed.cluster.systems.raftkv import syncobj_private as private
from faultbed.cluster.systems.raftkv.replica import Replica, ReplicaConfig
from faultbed.cluster.systems.raftkv.transport import skip_held


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Follower:
    """Replica n2 of {n1, n2}; n1's messages are handed to its transport by hand."""

    def __init__(self, data_dir: str, bugs: frozenset[str], sent: list[dict[str, Any]]) -> None:
        ports = {"n1": free_port(), "n2": free_port()}
        identities = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
        self.replica = Replica(ReplicaConfig(name="n2", identities=identities, dial={"n1": identities["n1"]},
                                             listen_host="127.0.0.1", raft_port=ports["n2"], data_dir=data_dir,
                                             pysyncobj_bugs=bugs))
        self.sync = self.replica.sync
        self.transport = self.sync._SyncObj__transport  # type: ignore[attr-defined]
        self.leader = self.transport._nodeAddrToNode[identities["n1"]]
        self.sent = sent

    def append(self, term: int, prev: tuple[int, int], entries: list[tuple[int, int]], commit: int) -> dict[str, Any]:
        """n1 (leader of `term`) sends entries [(index, term), ...] after `prev`; returns n2's reply."""
        message = {"type": "append_entries", "term": term, "commit_index": commit,
                   "prevLogIdx": prev[0], "prevLogTerm": prev[1],
                   "entries": [(f"cmd {i}/{t}".encode(), i, t) for i, t in entries]}
        before = len(self.sent)
        self.transport._onMessageReceived(self.leader, message)
        replies = [m for m in self.sent[before:] if m.get("type") == "next_node_idx"]
        assert len(replies) == 1, self.sent[before:]
        return replies[0]

    def log(self) -> list[tuple[int, int]]:
        journal = private.journal(self.sync)
        return [(int(journal[i][1]), int(journal[i][2])) for i in range(len(journal))]

    def violations(self) -> list[str]:
        path = os.path.join(self.replica.config.data_dir, "raft.trace.jsonl")
        return sorted({v.invariant for v in check_traces({"n2": read_trace(path, "n2")})})


@pytest.fixture
def follower(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(TCPTransport, "send", lambda self, node, message: sent.append(message) or True)
    made: list[Follower] = []

    def make(bugs: frozenset[str] = frozenset()) -> Follower:
        f = Follower(str(tmp_path / f"n2-{len(made)}"), bugs, sent)
        made.append(f)
        return f
    yield make
    for f in made:
        f.replica.close()


def run(term: int) -> list[tuple[int, int]]:
    return [(i, term) for i in range(2, 11)]


def catch_up_then_resend(f: Follower) -> dict[str, Any]:
    """Leader of term 1: entries 2-6, then 7-10 with commit 8, then 2-6 again (a reset moved nextIndex back)."""
    assert f.append(1, (1, 0), [(i, 1) for i in range(2, 7)], commit=1)["success"]
    assert f.append(1, (6, 1), [(i, 1) for i in range(7, 11)], commit=8)["next_node_idx"] == 11
    assert f.sync.raftCommitIndex == 8
    return f.append(1, (1, 0), [(i, 1) for i in range(2, 7)], commit=8)


def test_a_range_sent_again_leaves_the_log_and_the_commit_index_alone(follower: Any) -> None:
    f = follower()
    reply = catch_up_then_resend(f)
    assert f.log() == [(1, 0)] + run(1)
    assert f.sync.raftCommitIndex == 8
    # the whole log is the leader's (it ends with an entry of the leader's term): match 10, not 6
    assert reply["success"] and not reply["reset"] and reply["next_node_idx"] == 11
    assert f.violations() == []


def test_pysyncobjs_own_follower_deletes_held_committed_entries(follower: Any) -> None:
    """The switch: the same messages, pysyncobj 0.3.11 as it reads them."""
    f = follower(frozenset({"resend-truncate"}))
    reply = catch_up_then_resend(f)
    assert f.log() == [(1, 0)] + [(i, 1) for i in range(2, 7)]
    assert f.sync.raftCommitIndex == 6
    assert reply["success"] and reply["next_node_idx"] == 7  # the leader's match index for n2 goes back, 10 -> 6
    assert f.violations() == ["commit-monotonic", "leader-completeness"]


def test_old_term_entries_after_a_held_range_are_kept_but_not_acknowledged(follower: Any) -> None:
    """A new leader (term 2) sends 2-6 of term 1 again: 7-10 (term 1) stay, the reply says 6, commit stays 8."""
    f = follower()
    assert f.append(1, (1, 0), run(1), commit=8)["next_node_idx"] == 11
    reply = f.append(2, (1, 0), [(i, 1) for i in range(2, 7)], commit=10)
    assert f.log() == [(1, 0)] + run(1)
    assert reply["success"] and reply["next_node_idx"] == 7  # 7-10 are not shown to be the leader's
    assert f.sync.raftCommitIndex == 8  # not 10: nothing after 6 is known to be the leader's
    assert f.violations() == []


def test_a_conflicting_entry_is_still_deleted_with_everything_after_it(follower: Any) -> None:
    f = follower()
    f.append(1, (1, 0), run(1), commit=5)
    reply = f.append(2, (3, 1), [(4, 1), (5, 1), (6, 1), (7, 2), (8, 2)], commit=5)
    assert f.log() == [(1, 0)] + [(i, 1) for i in range(2, 7)] + [(7, 2), (8, 2)]
    assert reply["success"] and reply["next_node_idx"] == 9
    assert f.sync.raftCommitIndex == 5
    assert f.violations() == []


def test_skip_held_on_its_own() -> None:
    terms = {1: 0, 2: 1, 3: 1, 4: 1, 5: 2}
    term = terms.get
    base = {"type": "append_entries", "term": 2, "commit_index": 5}

    def msg(prev: tuple[int, int], entries: list[tuple[int, int]], **extra: Any) -> dict[str, Any]:
        return {**base, "prevLogIdx": prev[0], "prevLogTerm": prev[1],
                "entries": [(b"c", i, t) for i, t in entries], **extra}

    # held 2-3, then 4 held, 5 conflicts (term 2 vs 3): from 5 on for pysyncobj
    out, ack = skip_held(msg((1, 0), [(2, 1), (3, 1), (4, 1), (5, 3), (6, 3)]), term, 5)
    assert (out["prevLogIdx"], out["prevLogTerm"], [e[1] for e in out["entries"]], ack) == (4, 1, [5, 6], None)
    # all held, our last entry is of the leader's term: a heartbeat at 5 acknowledging 5
    out, ack = skip_held(msg((1, 0), [(2, 1), (3, 1)]), term, 5)
    assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"], out["commit_index"], ack) == (5, 2, [], 5, 5)
    # all held, leader of term 3: only through 3 is shown; the commit index is capped there
    out, ack = skip_held({**msg((1, 0), [(2, 1), (3, 1)]), "term": 3}, term, 5)
    assert (out["prevLogIdx"], out["entries"], out["commit_index"], ack) == (5, [], 3, 3)
    # nothing to skip: prevLogIdx not held with its term, first entry conflicts, chunked entry, heartbeat
    for m in (msg((1, 1), [(2, 1)]), msg((6, 2), [(7, 2)]), msg((1, 0), [(2, 2), (3, 2)]),
              msg((1, 0), [], transmission="start"), msg((5, 2), [])):
        assert skip_held(m, term, 5) == (m, None)


def test_vanilla_includes_resend_truncate() -> None:
    assert "resend-truncate" in raft_bugs(frozenset({"vanilla"}))
    assert raft_bugs(frozenset({"resend-truncate"})) == {"resend-truncate"}
