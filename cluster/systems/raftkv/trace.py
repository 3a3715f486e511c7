"""The Raft trace: every state change of one pysyncobj node, one JSON object per line.

`<data_dir>/raft.trace.jsonl` (docs/RAFT-TRACE.md is the format; the raft-invariants
checker reads it). Log changes are seen by wrapping the journal's mutators (nothing
else changes the log); term, vote, role, commit index, last applied and the leader's
match indexes by comparing them with what was written last, after every tick, message
received and message sent. The trace is flushed per line (a SIGKILL keeps it) but not
fsync'd: a power loss may cut its tail, and every start begins a new incarnation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from typing import IO, Any, Callable

from faultbed.cluster.systems.raftkv import syncobj_private as private

log = logging.getLogger(__name__)

TRACE_FILE = "raft.trace.jsonl"


def digest(command: Any) -> str:
    """A short digest of a log entry's command bytes (the same on every node)."""
    data = command if isinstance(command, (bytes, bytearray)) else repr(command).encode()
    return hashlib.blake2b(bytes(data), digest_size=8).hexdigest()


class RaftTrace:
    """Appends Raft state changes of one node to its trace file."""

    def __init__(self, path: str, names: dict[str, str]) -> None:
        """`names`: Raft identity -> node name (peers are named by node name in the trace)."""
        self.path = path
        self._names = names
        self._fh: IO[str] = open(path, "a", encoding="utf-8", buffering=1)
        self._lock = threading.RLock()
        self._seen: dict[str, Any] = {}
        self._match: dict[str, int] = {}
        self._journal: Any = None

    def write(self, event: str, **fields: Any) -> None:
        with self._lock:
            if self._fh.closed:
                return
            self._fh.write(json.dumps({"time": time.time_ns(), "event": event, **fields},
                                      separators=(",", ":"), default=str) + "\n")

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    # -- the log -----------------------------------------------------------
    def attach(self, sync: Any) -> None:
        """Write the start record (the log as loaded), then follow every change of the journal."""
        journal = private.journal(sync)
        self._journal = journal
        entries = [[int(e[1]), int(e[2]), digest(e[0])] for e in (journal[i] for i in range(len(journal)))]
        self.write("start", log=entries, commit=int(sync.raftCommitIndex))
        journal.add = self._wrap(journal.add, self._on_add)
        journal.deleteEntriesFrom = self._wrap(journal.deleteEntriesFrom, self._on_delete_from)
        journal.deleteEntriesTo = self._wrap(journal.deleteEntriesTo, self._on_delete_to)
        journal.clear = self._wrap(journal.clear, self._on_clear)
        self.observe(sync)

    def _wrap(self, method: Callable[..., Any], before: Callable[..., None]) -> Callable[..., Any]:
        @functools.wraps(method)
        def traced(*args: Any, **kwargs: Any) -> Any:
            before(*args, **kwargs)
            return method(*args, **kwargs)
        return traced

    def _first_index(self) -> int | None:
        return int(self._journal[0][1]) if len(self._journal) else None

    def _on_add(self, command: Any, idx: int, term: int) -> None:
        self.write("append", index=int(idx), term=int(term), digest=digest(command))

    def _on_delete_from(self, position: int) -> None:
        first = self._first_index()
        if first is not None:
            self.write("truncate", index=first + int(position))

    def _on_delete_to(self, position: int) -> None:
        first = self._first_index()
        if first is not None:
            self.write("compact", index=first + int(position))

    def _on_clear(self) -> None:
        self.write("clear")

    # -- everything else ---------------------------------------------------
    def observe(self, sync: Any) -> None:
        """Write what changed since the last call (term/vote, role, commit, applied, match)."""
        with self._lock:
            if self._journal is None or self._fh.closed:
                return  # not attached yet: the start record comes first
            try:
                self._observe(sync)
            except (AttributeError, IndexError, KeyError, TypeError) as exc:  # mid-construction
                log.debug("raft trace: cannot observe yet: %s", exc)

    def _observe(self, sync: Any) -> None:
        term, vote = private.current_term(sync), private.voted_for(sync)
        role = private.STATE_NAMES.get(private.raft_state(sync), "unknown")
        vote_name = None if vote is None else self._names.get(str(vote), str(vote))
        if self._changed("term", (term, vote_name)):
            self.write("term", term=term, vote=vote_name)
        if self._changed("role", (role, term)):
            self.write("role", role=role, term=term)
            # pysyncobj announces a new leader before it resets matchIndex: what is there now
            # is the previous term's, not to be written
            self._match = {self._names.get(str(n.id), str(n.id)): i for n, i in private.match_index(sync).items()}
        commit = int(sync.raftCommitIndex)
        if self._changed("commit", commit):
            self.write("commit", index=commit, term=term, role=role)
        self._observe_applied(sync)
        if role == "leader":
            for node, index in private.match_index(sync).items():
                peer = self._names.get(str(node.id), str(node.id))
                if self._match.get(peer) != index:
                    self._match[peer] = index
                    self.write("match", peer=peer, index=int(index), term=term)

    def _observe_applied(self, sync: Any) -> None:
        applied = int(sync.raftLastApplied)
        before = self._seen.get("applied")
        if not self._changed("applied", applied) or before is None or applied <= before:
            return
        first = self._first_index()
        for index in range(before + 1, applied + 1):
            if first is None or index < first or index - first >= len(self._journal):
                continue  # compacted: it is in the snapshot, not the journal
            entry = self._journal[index - first]
            self.write("apply", index=index, term=int(entry[2]), digest=digest(entry[0]))

    def _changed(self, key: str, value: Any) -> bool:
        if self._seen.get(key) == value:
            return False
        self._seen[key] = value
        return True
