"""A history builder for the Maelstrom checkers' tests: operations one after another, or overlapping."""

from __future__ import annotations

from typing import Any

FINAL = 1_000_000


class History:
    """Events with index and time (1 ms apart); `op` writes an invoke and its completion at once,
    `invoke`/`complete` let operations overlap."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _add(self, event: dict[str, Any]) -> dict[str, Any]:
        event["index"] = len(self.events)
        event["time"] = event["index"] * 1_000_000
        self.events.append(event)
        return event

    def invoke(self, process: int, f: str, value: Any = None) -> dict[str, Any]:
        return self._add({"type": "invoke", "process": process, "f": f, "value": value})

    def complete(self, invocation: dict[str, Any], type_: str, value: Any = None, node: str = "n1") -> None:
        self._add({"type": type_, "process": invocation["process"], "f": invocation["f"], "value": value,
                   "node": node})

    def op(self, process: int, f: str, value: Any = None, type_: str = "ok", result: Any = None,
           node: str = "n1") -> int:
        """One whole operation; an ok completion returns `result` (default: the invoked value)."""
        invocation = self.invoke(process, f, value)
        completed = (value if result is None else result) if type_ == "ok" else None
        self.complete(invocation, type_, completed, node)
        return int(invocation["index"])

    def final_read(self, node: str, value: Any, type_: str = "ok", attempt: int = 0) -> None:
        self.op(FINAL + attempt, "read", None, type_, value, node)

    def nemesis(self, f: str) -> None:
        self._add({"type": "info", "process": "nemesis", "f": f, "value": None})
