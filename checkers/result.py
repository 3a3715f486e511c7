"""A checker's verdict as plain data; verdicts merge as Jepsen's do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Union

Valid = Union[bool, Literal["unknown"]]
UNKNOWN: Literal["unknown"] = "unknown"

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_ERROR = 0, 1, 2, 3


@dataclass(frozen=True)
class Result:
    """What a checker found: `valid` is True, False or "unknown"; details are JSON-able."""

    checker: str
    valid: Valid
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"checker": self.checker, "valid": self.valid, "details": self.details}


def merge_valid(values: Iterable[Valid]) -> Valid:
    """False beats unknown beats True; no values at all is True."""
    seen = list(values)
    if any(v is False for v in seen):
        return False
    if any(v == UNKNOWN for v in seen):
        return UNKNOWN
    return True


def exit_code(valid: Valid) -> int:
    if valid is True:
        return EXIT_VALID
    if valid is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN


def verdict_word(valid: Valid) -> str:
    if valid is True:
        return "valid"
    return "INVALID" if valid is False else "unknown"
