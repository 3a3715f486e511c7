"""A follower sent a snapshot it already holds keeps its log (transport.RaftTransport._load_dump).

pysyncobj 0.3.11 installs every snapshot a leader sends by clearing the log and reloading the state
machine from it (`__loadDumpFile(clearJournal=True)`), also when the follower holds the snapshot's last
entry and has committed past it: its commit index went back (raft-invariants' commit-monotonic, in every
10-minute soak: a new leader's snapshot arrived twice, the second after the follower had caught up from
the first; docs/RAFT-TRACE.md). Raft's InstallSnapshot rule 6 keeps the log then. These tests drive a real
pysyncobj follower (a raftkv Replica, not ticked, no network) through raftkv's transport with a snapshot
made as pysyncobj makes one (gzip of pickle: state, last entry, the entry before it, cluster) and sent in
pysyncobj's chunks, and check its log, its commit index, its reply and its Raft trace. With
`snapshot-reinstall` (pysyncobj's own behaviour) the same messages show the fault.
"""

from __future__ import annotations

import gzip
import io
from typing import Any

from pysyncobj import pickle

from tests.systems.test_raftkv_resend import Follower, follower, run  # noqa: F401 (follower: a fixture)


def snapshot(last: tuple[int, int], before: tuple[int, int]) -> bytes:
    """A pysyncobj dump without state (state None: the follower's is left as it is), through `last`."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as g:
        pickle.dump((None, (f"cmd {last[0]}/{last[1]}".encode(), *last),
                     (f"cmd {before[0]}/{before[1]}".encode(), *before), []), g)
    return buffer.getvalue()


def send_snapshot(f: Follower, term: int, commit: int, dump: bytes, chunk: int = 64) -> list[dict[str, Any]]:
    """The leader of `term` sends `dump` in chunks as pysyncobj does (data, isFirst, isLast: the last one
    empty); returns the follower's replies."""
    before = len(f.sent)
    pieces = [dump[i:i + chunk] for i in range(0, len(dump), chunk)] + [b""]
    for number, piece in enumerate(pieces):
        f.transport._onMessageReceived(f.leader, {"type": "append_entries", "term": term, "commit_index": commit,
                                                  "serialized": (piece, number == 0, number == len(pieces) - 1)})
    return [m for m in f.sent[before:] if m.get("type") == "next_node_idx"]


def caught_up(f: Follower) -> None:
    """Leader of term 1: entries 2-10, commit 8."""
    assert f.append(1, (1, 0), run(1), commit=8)["next_node_idx"] == 11
    assert f.sync.raftCommitIndex == 8


def test_a_snapshot_already_held_leaves_the_log_and_the_commit_index_alone(follower: Any) -> None:
    f = follower()
    caught_up(f)
    replies = send_snapshot(f, 1, 8, snapshot((5, 1), (4, 1)))
    assert f.log() == [(1, 0)] + run(1)
    assert f.sync.raftCommitIndex == 8
    assert replies[-1]["success"] and replies[-1]["next_node_idx"] == 6  # what the snapshot proved
    assert f.violations() == []


def test_pysyncobjs_own_follower_installs_it_again(follower: Any) -> None:
    """The switch: the same messages, pysyncobj 0.3.11 as it reads them."""
    f = follower(frozenset({"snapshot-reinstall"}))
    caught_up(f)
    replies = send_snapshot(f, 1, 8, snapshot((5, 1), (4, 1)))
    assert f.log() == [(4, 1), (5, 1)]
    assert f.sync.raftCommitIndex == 5
    assert replies[-1]["success"] and replies[-1]["next_node_idx"] == 6
    assert f.violations() == ["commit-monotonic"]


def test_a_snapshot_past_the_log_or_of_another_term_is_installed(follower: Any) -> None:
    f = follower()
    caught_up(f)
    send_snapshot(f, 2, 8, snapshot((6, 2), (5, 2)))  # our entry 6 is of term 1: a conflict
    assert f.log() == [(5, 2), (6, 2)]
    g = follower()
    caught_up(g)
    send_snapshot(g, 2, 12, snapshot((14, 2), (13, 2)))  # beyond our last entry
    assert g.log() == [(13, 2), (14, 2)]
    assert g.sync.raftCommitIndex == 8  # snapshot-commit: not the leader's 12 on a snapshot message
