"""One Raft replica: pysyncobj configured for speed and safety, ticked by our own thread.

Timers (defaults in `RaftTimers`, overridable through `plan.options["raft"]`):

- pysyncobj's defaults batch appends and send them every `appendEntriesPeriod` (0.1 s)
  from a thread that polls every 50 ms: about 5 synchronous writes/s. With
  `appendEntriesUseBatch=False` a new command wakes the tick thread through a pipe
  and is sent at once; followers answer at once; the leader applies and sends the
  new commit index at once. A write then costs a few loopback round trips.
- Heartbeat 50 ms, election timeout 0.6-1.2 s: more than ten missed heartbeats before
  anyone campaigns (a loaded 2-core machine can stall a process for a few hundred
  ms), and a new leader well within 2 s of losing the old one.
- `leaderFallbackTimeout` 1.2 s (default 30 s): a leader cut off from a majority steps
  down quickly, so its clients get `fail` (no leader) instead of timeouts.
- Reconnect after 0.3 s (default 5 s): links come back promptly after a heal.
- `commandsWaitLeader=False`: with no known leader a command fails at once
  (MISSING_LEADER: certainly not submitted) instead of waiting in a queue past the
  client's timeout.

We tick with `autoTick=False` in our own thread so that the persisted term and vote
are restored before the first tick, and an exception in a tick is logged, not fatal.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass, fields
from typing import Any

from pysyncobj import SyncObj, SyncObjConf

from faultbed.cluster.systems.raftkv import syncobj_private as private
from faultbed.cluster.systems.raftkv.durability import JournalSync
from faultbed.cluster.systems.raftkv.state import KVState
from faultbed.cluster.systems.raftkv.trace import TRACE_FILE, RaftTrace
from faultbed.cluster.systems.raftkv.transport import MeshNode, RaftTransport, VoteStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaftTimers:
    """Seconds; see the module docstring for why each value."""

    heartbeat: float = 0.05
    election_min: float = 0.6
    election_max: float = 1.2
    leader_fallback: float = 1.2
    connection_timeout: float = 2.0
    reconnect: float = 0.3
    tick: float = 0.02

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "RaftTimers":
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown raft timer option(s): {', '.join(sorted(unknown))}")
        return cls(**{k: float(v) for k, v in options.items()})


@dataclass(frozen=True)
class ReplicaConfig:
    name: str
    identities: dict[str, str]      # node name -> Raft identity "host:port"
    dial: dict[str, str]            # peer name -> where to connect for its raft port
    listen_host: str
    raft_port: int
    data_dir: str
    dedupe: bool = True
    timers: RaftTimers = RaftTimers()
    compaction_entries: int = 5000
    sync_journal: bool = True
    pysyncobj_bugs: frozenset[str] = frozenset()  # transport fixes turned off (raftkv's RAFT_BUGS)
    trace_file: str = TRACE_FILE                  # in data_dir; "" writes no Raft trace
    append_batch_bytes: int = 2 ** 22             # pysyncobj's appendEntriesBatchSizeBytes (APPEND_BATCH)


class Replica:
    """A started pysyncobj node plus the thread that ticks it; `close()` stops both."""

    def __init__(self, config: ReplicaConfig, state: Any = None) -> None:
        """`state` is the replicated consumer (pysyncobj @replicated methods); raftkv's KVState by default."""
        self.config = config
        self.name = config.name
        self.state = state if state is not None else KVState(dedupe=config.dedupe)
        self._names = {identity: name for name, identity in config.identities.items()}
        os.makedirs(config.data_dir, exist_ok=True)
        self._votes = VoteStore(os.path.join(config.data_dir, "raft.vote.json"))
        self.journal_sync = JournalSync(enabled=config.sync_journal)
        self._stop = threading.Event()
        self._last_leader: str | None = None
        self.trace = (RaftTrace(os.path.join(config.data_dir, config.trace_file), self._names)
                      if config.trace_file else None)
        self.sync = self._create()
        self._restore_vote()
        if self.trace is not None:
            self.trace.attach(self.sync)
        self._thread = threading.Thread(target=self._run, name="raft-tick", daemon=True)

    def _create(self) -> SyncObj:
        c, t = self.config, self.config.timers
        conf = SyncObjConf(
            autoTick=False,
            appendEntriesUseBatch=False,
            appendEntriesPeriod=t.heartbeat,
            raftMinTimeout=t.election_min,
            raftMaxTimeout=t.election_max,
            leaderFallbackTimeout=t.leader_fallback,
            connectionTimeout=max(t.connection_timeout, t.election_max),
            connectionRetryTime=t.reconnect,
            commandsWaitLeader=False,
            # One AppendEntries carries a lagging follower's whole backlog, no-op included
            # (unless the run asked for --option append-batch=small).
            appendEntriesBatchSizeBytes=c.append_batch_bytes,
            bindAddress=f"{c.listen_host}:{c.raft_port}",
            maxBindRetries=1,
            journalFile=os.path.join(c.data_dir, "raft.journal"),
            fullDumpFile=os.path.join(c.data_dir, "raft.dump"),
            logCompactionMinEntries=c.compaction_entries,
            useFork=False,  # no fork() of a threaded process; our snapshots are small
            onStateChanged=self._on_state_changed,
        )
        self_node = MeshNode(c.identities[c.name])
        peers = [MeshNode(c.identities[p], c.dial[p]) for p in sorted(c.dial)]
        transport = functools.partial(RaftTransport, vote_store=self._votes, journal_sync=self.journal_sync,
                                      bugs=c.pysyncobj_bugs, trace=self.trace)
        sync = SyncObj(self_node, peers, conf, consumers=[self.state], transportClass=transport)
        private.check(sync)
        self.journal_sync.attach(private.journal(sync))
        return sync

    def _restore_vote(self) -> None:
        if "volatile-vote" in self.config.pysyncobj_bugs:
            log.info("%s: volatile-vote: starting at term 0 (pysyncobj's own behaviour)", self.name)
            return
        term, voted_for = self._votes.load()
        log_term = private.last_log_term(self.sync)
        if log_term > term:
            # Entries of a later term reached the journal before the reply (and the vote
            # file) went out: no vote in that term was ever sent.
            term, voted_for = log_term, None
        private.restore_vote(self.sync, term, voted_for)
        log.info("%s: restored term %d, voted for %s, commit index %d",
                 self.name, term, voted_for, self.sync.raftCommitIndex)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.sync.destroy()
        if self.trace is not None:
            self.trace.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync.doTick(self.config.timers.tick)
            except Exception:
                log.exception("%s: raft tick failed", self.name)
                time.sleep(self.config.timers.tick)
            if self.trace is not None:
                self.trace.observe(self.sync)
            self._log_changes()

    def _on_state_changed(self, old: int, new: int) -> None:
        """pysyncobj's callback, in the tick thread, on every Raft state change."""
        # No term here: pysyncobj calls this before it increments the term of a new candidacy.
        log.info("%s: %s -> %s", self.name, private.STATE_NAMES.get(old, old), private.STATE_NAMES.get(new, new))
        if self.trace is not None:
            self.trace.observe(self.sync)

    def _log_changes(self) -> None:
        leader = self.leader()
        if leader != self._last_leader:
            log.info("%s: leader changed: %s -> %s (term %d)", self.name, self._last_leader,
                     leader, self.sync.raftCurrentTerm)
            self._last_leader = leader

    # -- queries -----------------------------------------------------------
    def leader(self) -> str | None:
        """The leader's node name as this replica knows it, or None."""
        node = self.sync._getLeader()
        return None if node is None else self._names.get(node.id, str(node.id))

    def is_leader(self) -> bool:
        return bool(self.sync._isLeader())

    def status(self) -> dict[str, Any]:
        sync = self.sync
        return {
            "node": self.name,
            "leader": self.leader(),
            "state": private.STATE_NAMES[private.raft_state(sync)],
            "term": sync.raftCurrentTerm,
            "commit_index": sync.raftCommitIndex,
            "last_applied": sync.raftLastApplied,
            "has_quorum": _has_quorum(sync),
        }

    # -- commands ------------------------------------------------------------
    def submit(self, method: str, *args: Any) -> "Pending":
        """Queue a replicated call; the Pending resolves when pysyncobj reports its fate.

        Raises only when pysyncobj raised after queueing may have happened (the caller
        must treat that as unknown).
        """
        pending = Pending()
        getattr(self.state, method)(*args, callback=pending.resolve)
        return pending


class Pending:
    """The fate of one submitted command, set from the tick thread."""

    def __init__(self) -> None:
        self.result: Any = None
        self.error: int | None = None
        self._event = threading.Event()

    def resolve(self, result: Any, error: int) -> None:
        self.result, self.error = result, error
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(max(0.0, timeout))


def _has_quorum(sync: SyncObj) -> bool | None:
    try:
        return bool(sync.hasQuorum)
    except RuntimeError:  # the tick thread changed the connected set while we counted
        return None
