"""The raftkv client protocol: newline-delimited JSON over TCP, one request at a time.

    request:  {"id": 7, "f": "cas", "key": "k1", "value": [1, 2], "timeout": 1.5}
    response: {"id": 7, "type": "ok" | "fail" | "info", "value": ..., "error": "...",
               "node": "n1", "leader": "n2"}

`id` pairs an answer with its request, so a late answer is never taken for the next
one; `timeout` is how long the server may wait for Raft before it answers `info`.
`{"id": 8, "f": "status"}` answers `{"type": "ok", "value": {status}}`.
"""

from __future__ import annotations

import json
from typing import Any

from faultbed.cluster.systems import FAIL, INFO

WRITE_OPS = frozenset({"write", "cas", "append", "apply"})
READ_OPS = frozenset({"read", "read-ledger"})
DATA_OPS = WRITE_OPS | READ_OPS
STATUS = "status"

MAX_LINE = 16 * 1024 * 1024
ENCODING = "utf-8"


def uncertain_type(f: str) -> str:
    """The outcome type of an operation whose fate is unknown (timeout, connection lost).

    A read has no effect, so a read that never answered certainly changed nothing: `fail`
    (Jepsen's clients do the same). Anything that may write is `info`.
    """
    return FAIL if f in READ_OPS else INFO


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode(ENCODING)


def decode(line: bytes) -> dict[str, Any]:
    """One message; raises ValueError when the line is not a JSON object."""
    message = json.loads(line.decode(ENCODING))
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")
    return message
