"""raftkv's Raft transport: pysyncobj's TCP transport, routed through the mesh and made safer.

Identity vs dial address. A `MeshNode` keeps the peer's identity ("host:port") as its
pysyncobj id and address, but connects to its dial address (a Toxiproxy proxy). This
is enough for identity to survive the proxy: the connecting side's first message is
its own identity (`TCPTransport._sendSelfAddress`), and the accepting side maps the
connection to a node by that message (`_nodeAddrToNode`), never by the peer's socket
address. pysyncobj dials in one direction per pair only (`_shouldConnect`: the node
with the greater identity dials), so each pair shares one TCP connection that crosses
the proxy `greater->smaller`; the mesh faults every stream, so that is enough.

Eight fixes of pysyncobj 0.3.11 live here, because every message passes through:

- Durable vote. pysyncobj persists its log but not currentTerm/votedFor (PySyncObj
  issue #84), so a restarted node could vote twice in one term, or accept entries
  from a deposed leader. `send` writes (term, votedFor) to the data directory before
  any message leaves while either changed: a vote or a term is never seen by a peer
  before it is on disk. `VoteStore.load` restores it at startup.
- Term-tagged acknowledgements. pysyncobj's `next_node_idx` (the AppendEntries reply)
  carries no term, so a leader could count a reply meant for an earlier term of its
  own. Replies are tagged with the sender's term; a leader ignores other terms.
- Figure-8 gate. pysyncobj commits by counting replicas without checking that the
  entry is from the current term (Raft paper, section 5.4.2). A success reply that
  does not cover the no-op the leader appended on election is downgraded to "no
  match" (it still counts as a sign of life), so every counted replica holds an entry
  of the current term, and committing up to it is safe.
- Whole-log acknowledgement. A follower that appended entries acknowledges
  `next_node_idx = last new index` (not last + 1), so the leader could only commit an
  entry after the next heartbeat: one `appendEntriesPeriod` per write. A success reply
  leaves right after the follower made its log equal to the leader's through its last
  entry, so the reply now says last + 1.
- Commit index never goes back. A follower takes the leader's commit index even when it
  is lower than its own (a new leader that has not yet learnt the last commit; PySyncObj
  issue #166, found by raft-invariants' commit-monotonic). Raft only raises it: an
  AppendEntries carrying a lower one is raised to ours before pysyncobj reads it.
- Held entries are not deleted. A follower whose log goes on after an AppendEntries'
  prevLogIdx deletes everything after it (syncobj.py: `if len(prevEntries) > 1:
  __deleteEntriesFrom(prevLogIdx + 1)`), also entries it holds with the same term: not
  only from the first conflicting entry (Raft, Figure 2, AppendEntries rule 3). A leader
  that sends a lagging follower a range again (a reset reply moved its nextIndex back
  while later batches were on the way) made the follower lose committed entries until
  later batches brought them back, its commit index going back with them (found by
  raft-invariants with `--option append-batch=small`; docs/RAFT-TRACE.md). `skip_held`
  removes the leading entries the follower holds with the same term before pysyncobj
  reads the message, prevLogIdx/prevLogTerm moved past them, so pysyncobj deletes from
  the first conflicting entry only. When it holds them all, pysyncobj gets a heartbeat
  at the follower's last entry (nothing deleted); the reply then acknowledges what the
  message proved (its last entry, or the whole log when the log ends with an entry of
  the leader's term: log matching) and the commit index taken from the leader is capped
  at that index, as Raft's `min(leaderCommit, index of last new entry)`.
- No commit on a snapshot message that installs nothing. pysyncobj ends every
  AppendEntries with `commit = min(leader's commit, own last index)`, install-snapshot
  messages (no `prevLogIdx`) included: the first chunk, or `serialized: None` while the
  leader serializes, commits the follower's own, possibly stale, entries (found by
  raft-invariants' log-matching; docs/RAFT-TRACE.md). Such a message carries our own
  commit index to pysyncobj.
- A snapshot the follower already holds is not installed. pysyncobj's install always
  clears the log (`__loadDumpFile(clearJournal=True)`) and reloads the state machine from
  the snapshot, also when the follower holds the snapshot's last entry and has committed
  past it (a new leader's snapshot arriving twice, after the follower caught up from the
  first): its commit index went back and its state machine was reloaded from an older
  state (found by raft-invariants' commit-monotonic in every 10-minute soak). Raft's
  InstallSnapshot rule 6: a follower whose log holds the snapshot's last entry with its
  term keeps its log and replies. The install is wrapped on the instance (the snapshot's
  last entry is read from the file received), and the reply acknowledges that entry. Not
  covered: the file received has already replaced the follower's own dump (pysyncobj
  writes it as it arrives), so until the follower's next compaction a restart starts from
  that older snapshot and drops the journal after it, as the install did at once before.

Each fix has a switch that restores pysyncobj's behaviour (raftkv's RAFT_BUGS:
volatile-vote, untagged-acks, old-term-commit, commit-regress, resend-truncate,
snapshot-commit, snapshot-reinstall; vanilla is all of them and the short acknowledgement).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any, Callable, Sequence

from pysyncobj import SyncObj
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.node import TCPNode
from pysyncobj.transport import TCPTransport

from faultbed.cluster.systems.raftkv import syncobj_private as private
from faultbed.cluster.systems.raftkv.durability import JournalSync
from faultbed.cluster.systems.raftkv.trace import RaftTrace

log = logging.getLogger(__name__)

ACK = "next_node_idx"
APPEND = "append_entries"
TERM_TAG = "raftkv_term"


class MeshNode(TCPNode):
    """A peer known by its identity, reached at its dial address."""

    def __init__(self, identity: str, dial: str | None = None) -> None:
        super().__init__(identity)
        host, port = (dial or identity).rsplit(":", 1)
        self._dial_host = host
        self._dial_port = int(port)

    @property
    def ip(self) -> str | None:
        return globalDnsResolver().resolve(self._dial_host)

    @property
    def port(self) -> int:
        return self._dial_port


class VoteStore:
    """currentTerm and votedFor in `<data_dir>/raft.vote.json`, replaced atomically."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.saved: tuple[int, Any] = (0, None)

    def load(self) -> tuple[int, Any]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
            self.saved = (int(data["term"]), data["voted_for"])
        except FileNotFoundError:
            self.saved = (0, None)
        return self.saved

    def save(self, term: int, voted_for: Any) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"term": term, "voted_for": voted_for}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.saved = (term, voted_for)
        log.debug("persisted term %d, voted for %s", term, voted_for)


class RaftTransport(TCPTransport):
    """TCPTransport that persists the vote and the journal before sending, and gates acknowledgements."""

    def __init__(self, syncObj: SyncObj, selfNode: Any, otherNodes: Any, vote_store: VoteStore,
                 journal_sync: JournalSync | None = None, bugs: frozenset[str] = frozenset(),
                 trace: RaftTrace | None = None) -> None:
        self._vote_store = vote_store
        self._journal_sync = journal_sync or JournalSync(enabled=False)
        self._bugs = bugs
        self._trace = trace
        self._ack_match: int | None = None  # what the reply to the message being read may acknowledge
        super().__init__(syncObj, selfNode, otherNodes)
        if "snapshot-reinstall" not in bugs:
            install = getattr(syncObj, private.LOAD_DUMP)
            setattr(syncObj, private.LOAD_DUMP, functools.partial(self._load_dump, install))

    def _load_dump(self, install: Callable[[bool], None], clearJournal: bool) -> None:
        """pysyncobj's `__loadDumpFile`, except for a snapshot received from the leader
        (clearJournal) whose last entry this follower's log holds with the same term."""
        if clearJournal:
            sync = self._syncObj
            try:
                index, term = private.received_snapshot_last_entry(sync)
            except Exception:  # pysyncobj's own load logs what is wrong with the file
                index, term = -1, -1
            if index >= 0 and private.entry_term(sync, index) == term:
                log.info("snapshot through %d (term %d) already held: log to %d and commit %d kept", index, term,
                         private.last_log_index(sync), sync.raftCommitIndex)
                self._ack_match = index  # the reply acknowledges what the snapshot proved
                return
        install(clearJournal)

    def send(self, node: Any, message: Any) -> bool:
        self._journal_sync.sync()
        sync = self._syncObj
        if self._trace is not None:
            self._trace.observe(sync)  # a vote or a role is in the trace before any peer sees it
        term = private.current_term(sync)
        vote = (term, private.voted_for(sync))
        if vote != self._vote_store.saved and "volatile-vote" not in self._bugs:
            self._vote_store.save(*vote)
        if isinstance(message, dict) and message.get("type") == ACK:
            message = dict(message)
            if "untagged-acks" not in self._bugs:
                message[TERM_TAG] = term
            if message.get("success") and not message.get("reset"):
                if self._ack_match is not None:  # a message whose entries we held (skip_held)
                    message["next_node_idx"] = self._ack_match + 1
                elif "short-ack" not in self._bugs:
                    message["next_node_idx"] = private.last_log_index(sync) + 1
        return bool(super().send(node, message))

    def _onMessageReceived(self, node: Any, message: Any) -> None:
        sync = self._syncObj
        ack_match = None
        if isinstance(message, dict) and message.get("type") == APPEND:
            if "resend-truncate" not in self._bugs and message.get("term", -1) >= private.current_term(sync):
                message, ack_match = skip_held(message, functools.partial(private.entry_term, sync),
                                               private.last_log_index(sync))
            if "commit-regress" not in self._bugs:
                message = keep_commit(message, sync.raftCommitIndex)
            if "snapshot-commit" not in self._bugs:
                message = hold_commit_on_snapshot(message, sync.raftCommitIndex)
        if isinstance(message, dict) and message.get("type") == ACK:
            message = gate_ack(message, private.current_term(sync), private.noop_index(sync), self._bugs,
                               private.match_index(sync).get(node))
            if message is None:
                return
        self._ack_match = ack_match
        try:
            super()._onMessageReceived(node, message)
        finally:
            self._ack_match = None
        if self._trace is not None:
            self._trace.observe(sync)


def skip_held(message: dict[str, Any], entry_term: Callable[[int], int | None],
              last_index: int) -> tuple[dict[str, Any], int | None]:
    """AppendEntries without the leading entries this follower holds with the same term.

    `entry_term(index)` is the term of our entry at `index` (None when the journal has
    none there), `last_index` our last index. Returns the message for pysyncobj and, when
    every entry was held, the index its success reply may acknowledge (else None: the
    reply is pysyncobj's own). An entry whose term differs is a conflict and stays, with
    everything after it: pysyncobj deletes from there (Raft's rule 3). A message whose
    prevLogIdx we do not hold with its term is left alone (pysyncobj rejects it).
    """
    entries: Sequence[Any] = message.get("entries") or ()
    prev = message.get("prevLogIdx")
    if not entries or message.get("transmission") is not None or not isinstance(prev, int):
        return message, None
    if entry_term(prev) != message.get("prevLogTerm"):
        return message, None
    held = 0
    for i, entry in enumerate(entries):
        if entry[1] != prev + 1 + i or entry_term(entry[1]) != entry[2]:
            break
        held += 1
    if held == 0:
        return message, None
    if held == len(entries) and last_index > prev + held:  # pysyncobj would delete what follows, for a while
        log.info("AppendEntries %d-%d held: entries %d-%d kept", prev + 1, prev + held, prev + held + 1, last_index)
    message = dict(message)
    if held < len(entries):
        message["prevLogIdx"], message["prevLogTerm"] = entries[held - 1][1], entries[held - 1][2]
        message["entries"] = list(entries[held:])
        return message, None
    # Every entry held: a heartbeat at our last entry, after which pysyncobj deletes nothing.
    # The message proves our log equal to the leader's through its last entry; through our
    # last when that is of the leader's term (only that leader made such entries).
    last_term = entry_term(last_index)
    match = last_index if last_term == message.get("term") else int(entries[-1][1])
    message["prevLogIdx"], message["prevLogTerm"] = last_index, last_term
    message["entries"] = []
    if isinstance(message.get("commit_index"), int) and message["commit_index"] > match:
        message["commit_index"] = match  # not past what the leader has shown us (keep_commit may raise it back)
    return message, match


def keep_commit(message: dict[str, Any], commit_index: int) -> dict[str, Any]:
    """AppendEntries whose leader commit index is never below ours (Raft, Figure 2: only
    `if leaderCommit > commitIndex`); pysyncobj sets it to the leader's even when lower (#166)."""
    if isinstance(message.get("commit_index"), int) and message["commit_index"] < commit_index:
        message = dict(message)
        message["commit_index"] = commit_index
    return message


def hold_commit_on_snapshot(message: dict[str, Any], commit_index: int) -> dict[str, Any]:
    """An install-snapshot AppendEntries (no `prevLogIdx`) with the commit index set to ours.

    pysyncobj 0.3.11 ends every AppendEntries with `commit = min(leader's, own last index)`,
    snapshot messages included: a first chunk, or `serialized: None` while the leader is
    serializing, installs nothing and says nothing of whether our log matches the leader's,
    yet commits our own (possibly stale, other-term) entries up to the leader's commit index.
    Raft commits only what is known to match. The message still reaches pysyncobj (it resets
    the election timer, and a last chunk installs the snapshot); the next regular
    AppendEntries, which the leader sends right after the snapshot, raises the commit index.
    """
    if "prevLogIdx" in message or message.get("commit_index") == commit_index:
        return message
    message = dict(message)
    message["commit_index"] = commit_index
    return message


def gate_ack(message: dict[str, Any], term: int, noop_index: int | None,
             bugs: frozenset[str] = frozenset(), matched: int | None = None) -> dict[str, Any] | None:
    """The acknowledgement a leader in `term` may act on, or None to ignore it.

    Replies from another term are dropped; so is a success reply whose match index
    (`next_node_idx - 1`) is below `matched`, the one the leader already holds for that
    peer: a reply about an older position (a follower's answer to a snapshot whose last
    entry it held, after it had acknowledged later entries) would set pysyncobj's match
    index back, where Raft's only grows within a term (raft-invariants' match-monotonic,
    found in a 10-minute soak). A success reply below the leader's election no-op is
    downgraded to success False, so replica counting only ever counts logs that hold a
    current-term entry.
    """
    if "untagged-acks" not in bugs and message.get(TERM_TAG) != term:
        return None
    if ("match-regress" not in bugs and message.get("success") and matched is not None
            and message["next_node_idx"] - 1 < matched):
        log.info("a success reply for %d ignored: below the peer's match index %d", message["next_node_idx"] - 1,
                 matched)
        return None
    if "old-term-commit" not in bugs and message.get("success") and noop_index is not None and message["next_node_idx"] - 1 < noop_index:
        message = dict(message)
        message["success"] = False
    return message
