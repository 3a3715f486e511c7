"""The private pysyncobj 0.3.11 state raftkv reads or writes, in one place.

pysyncobj keeps its Raft state in name-mangled attributes (`self.__raftCurrentTerm`
inside class SyncObj is `_SyncObj__raftCurrentTerm`). raftkv needs a few of them to
persist the vote, restore it after a restart, and gate acknowledgements; if a newer
pysyncobj renames them, these accessors fail loudly at startup (see `check`).
"""

from __future__ import annotations

from typing import Any

from pysyncobj import SyncObj

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
STATE_NAMES = {FOLLOWER: "follower", CANDIDATE: "candidate", LEADER: "leader"}

_TERM = "_SyncObj__raftCurrentTerm"
_VOTED_FOR = "_SyncObj__votedForNodeId"
_NOOP_INDEX = "_SyncObj__noopIDx"
_STATE = "_SyncObj__raftState"
_LOG = "_SyncObj__raftLog"
_MATCH = "_SyncObj__raftMatchIndex"
_SERIALIZER = "_SyncObj__serializer"
LOAD_DUMP = "_SyncObj__loadDumpFile"  # a method: wrapped on the instance by the transport


def check(sync: SyncObj) -> None:
    """Raise AttributeError now if this pysyncobj lacks an attribute raftkv relies on."""
    for name in (_TERM, _VOTED_FOR, _NOOP_INDEX, _STATE, _LOG, _MATCH, _SERIALIZER, LOAD_DUMP):
        getattr(sync, name)


def current_term(sync: SyncObj) -> int:
    return int(getattr(sync, _TERM))


def voted_for(sync: SyncObj) -> Any:
    return getattr(sync, _VOTED_FOR)


def raft_state(sync: SyncObj) -> int:
    return int(getattr(sync, _STATE))


def noop_index(sync: SyncObj) -> int | None:
    """Index of the no-op this node appended when it last became leader (None before)."""
    value = getattr(sync, _NOOP_INDEX)
    return None if value is None else int(value)


def match_index(sync: SyncObj) -> dict[Any, int]:
    """A leader's matchIndex per peer node (a copy; stale while not leader)."""
    return dict(getattr(sync, _MATCH))


def journal(sync: SyncObj) -> Any:
    """pysyncobj's Raft log (a FileJournal when journalFile is set)."""
    return getattr(sync, _LOG)


def last_log_term(sync: SyncObj) -> int:
    return int(getattr(sync, _LOG)[-1][2])


def last_log_index(sync: SyncObj) -> int:
    return int(getattr(sync, _LOG)[-1][1])


def received_snapshot_last_entry(sync: SyncObj) -> tuple[int, int]:
    """(index, term) of the last entry a snapshot just received from the leader covers (pysyncobj's
    dump: state, last applied entry, the entry before it, cluster)."""
    data = getattr(sync, _SERIALIZER).deserialize()
    return int(data[1][1]), int(data[1][2])


def entry_term(sync: SyncObj, index: int) -> int | None:
    """The term of the journal's entry at Raft index `index`, None when the journal has none there."""
    log = getattr(sync, _LOG)
    position = index - int(log[0][1])
    if position < 0 or position >= len(log):
        return None
    return int(log[position][2])


def restore_vote(sync: SyncObj, term: int, voted_for_id: Any) -> None:
    """Set currentTerm/votedFor before the first tick (pysyncobj itself starts at term 0)."""
    setattr(sync, _TERM, term)
    setattr(sync, _VOTED_FOR, voted_for_id)
