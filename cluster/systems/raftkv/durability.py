"""Make pysyncobj's journal durable before anything leaves the node.

pysyncobj keeps its Raft log in a shared mmap (FileJournal) and never msyncs it: an
entry survives SIGKILL (the page cache has it) but not a power loss. Raft's safety
needs an entry to be on disk before the node acknowledges it (a follower) or before
anyone else can count it (the leader, whose append precedes its AppendEntries). So
`JournalSync.sync()` msyncs the journal (MS_SYNC) when it changed, and the transport
calls it before every message it sends. The `no-journal-sync` bug turns it off.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

MUTATORS = ("add", "clear", "deleteEntriesFrom", "deleteEntriesTo")


class JournalSync:
    """Tracks changes to one pysyncobj journal and msyncs it on demand (a no-op when off)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.syncs = 0
        self._journal: Any = None
        self._dirty = False

    def attach(self, journal: Any) -> None:
        """Wrap the journal's mutating methods so that a change marks it dirty; sync what is there now."""
        self._journal = journal
        if not self.enabled:
            return
        if not hasattr(journal, "flush"):
            raise TypeError(f"{type(journal).__name__} cannot be synced (no flush)")
        for name in MUTATORS:
            setattr(journal, name, self._marking(getattr(journal, name)))
        self._dirty = True
        self.sync()

    def _marking(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def marked(*args: Any, **kwargs: Any) -> Any:
            self._dirty = True
            return method(*args, **kwargs)
        return marked

    def sync(self) -> None:
        if self.enabled and self._dirty and self._journal is not None:
            self._journal.flush()
            self._dirty = False
            self.syncs += 1
