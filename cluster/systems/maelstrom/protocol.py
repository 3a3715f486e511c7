"""Maelstrom's wire protocol as faultbed speaks it: one JSON message per line, error codes.

A message is `{"src": "n1", "dest": "n2", "body": {"type": ..., "msg_id": ..., "in_reply_to": ...}}`.
Node names start with `n`, clients with `c`; anything else (lin-kv, seq-kv, lww-kv) is a service.
An error body is `{"type": "error", "code": C, "text": "..."}`; a definite code means the
operation certainly did not happen (history `fail`), an indefinite one that it may have (`info`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_LINE = 16 * 1024 * 1024


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str
    definite: bool


# Maelstrom's documented error codes (doc/protocol.md, "Errors").
ERRORS: dict[int, ErrorCode] = {e.code: e for e in (
    ErrorCode(0, "timeout", False),
    ErrorCode(1, "node-not-found", True),
    ErrorCode(10, "not-supported", True),
    ErrorCode(11, "temporarily-unavailable", True),
    ErrorCode(12, "malformed-request", True),
    ErrorCode(13, "crash", False),
    ErrorCode(14, "abort", True),
    ErrorCode(20, "key-does-not-exist", True),
    ErrorCode(21, "key-already-exists", True),
    ErrorCode(22, "precondition-failed", True),
    ErrorCode(30, "txn-conflict", True),
)}
KEY_DOES_NOT_EXIST, PRECONDITION_FAILED = 20, 22


class ProtocolError(ValueError):
    """A line that is not a Maelstrom message."""


def is_definite(code: Any) -> bool:
    """True when an error code means the operation certainly did not take effect.

    Codes outside Maelstrom's table (custom ones) are taken as indefinite: nothing says otherwise."""
    known = ERRORS.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    return known is not None and known.definite


def describe_error(body: dict[str, Any]) -> str:
    """`22 precondition-failed: expected 3, had 4` from an error body."""
    code = body.get("code")
    known = ERRORS.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    name = known.name if known is not None else "custom"
    text = body.get("text")
    return f"{code} {name}" + (f": {text}" if text not in (None, "") else "")


def is_client(name: str) -> bool:
    return name.startswith("c")


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    """One line as a message with string `src` and `dest` and an object `body`; ProtocolError otherwise."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    for field in ("src", "dest"):
        if not isinstance(message.get(field), str):
            raise ProtocolError(f"no string {field!r}")
    if not isinstance(message.get("body"), dict):
        raise ProtocolError("no object 'body'")
    if not isinstance(message["body"].get("type"), str):
        raise ProtocolError("body has no string 'type'")
    return message


def shown(line: bytes, limit: int = 120) -> str:
    """A line as a person should see it in one error message: repr-quoted, cut at `limit`."""
    text = line.decode(errors="replace").rstrip("\n")
    return repr(text if len(text) <= limit else text[:limit] + "...")
