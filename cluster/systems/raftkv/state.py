"""The replicated state machine: a string-keyed map, an idempotency table and a ledger.

Every method marked `@replicated` runs on every node, in log order, once its entry is
committed; its return value is the result the submitting node's callback receives.
Methods must be deterministic and must never raise (pysyncobj would retry the same
entry on every tick), so bad input is answered with an error result instead.
"""

from __future__ import annotations

from typing import Any

from pysyncobj import SyncObjConsumer, replicated

CAS_MISMATCH = "cas-mismatch"
NOT_A_STRING = "not-a-string"


class KVState(SyncObjConsumer):
    """Replicated data; attributes set after `SyncObjConsumer.__init__` are snapshotted."""

    def __init__(self, dedupe: bool = True) -> None:
        # Set before the base __init__, so pysyncobj treats it as configuration, not data.
        self.dedupe = dedupe
        super().__init__()
        self.data: dict[str, Any] = {}
        self.results: dict[str, int] = {}   # idempotency key -> ledger position
        self.ledger: list[str] = []

    @replicated
    def read(self, key: str) -> Any:
        return self.data.get(key)

    @replicated
    def write(self, key: str, value: Any) -> None:
        self.data[key] = value

    @replicated
    def cas(self, key: str, expected: Any, new: Any) -> bool:
        if self.data.get(key) != expected:
            return False
        self.data[key] = new
        return True

    @replicated
    def append(self, key: str, suffix: str) -> str | None:
        """The new value, or None when the current value is not a string (nothing changes)."""
        current = self.data.get(key, "")
        if not isinstance(current, str) or not isinstance(suffix, str):
            return None
        self.data[key] = current + suffix
        return self.data[key]

    @replicated
    def apply(self, idempotency_key: str) -> int:
        """Ledger position of the key's first apply; appends only the first time (unless dedupe is off)."""
        if self.dedupe and idempotency_key in self.results:
            return self.results[idempotency_key]
        return self._append_ledger(idempotency_key)

    @replicated
    def append_ledger(self, idempotency_key: str) -> int:
        """Always append (the local-dedupe bug decides outside the log whether to call this)."""
        return self._append_ledger(idempotency_key)

    @replicated
    def read_ledger(self) -> list[str]:
        return list(self.ledger)

    def _append_ledger(self, idempotency_key: str) -> int:
        position = len(self.ledger)
        self.ledger.append(idempotency_key)
        self.results.setdefault(idempotency_key, position)
        return position

    def local_read(self, key: str) -> Any:
        """This replica's value, without Raft (the stale-reads bug)."""
        return self.data.get(key)

    def local_ledger(self) -> list[str]:
        return list(self.ledger)
