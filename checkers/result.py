"""A checker's verdict as plain data, the one shape of a checker, and check_safe.

A checker is `check(history, spec, out_dir) -> Result` (Jepsen's `check [checker test
history opts]`): `history` the run's events, a read-only Sequence (a run and `faultbed check`
pass a faultbed.history.HistoryFile, which reads the file again on each pass and holds no
event: read it, never change it; a list in tests), `out_dir` the run's results directory, where
the run's own files are (data/ with the nodes' data directories, nodes/ with their logs;
raft-invariants reads traces there) and where a checker may write its files; None for a
bare history (no run around it). A run and `faultbed check RUN_DIR` both pass the run's
directory. Verdicts merge as Jepsen's do; `check_safe` turns a checker
that raises into an `unknown` Result with the error, as Jepsen's check-safe does.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Literal, Protocol, Sequence, Union

from faultbed.errors import FaultbedError

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

log = logging.getLogger(__name__)

Valid = Union[bool, Literal["unknown"]]
UNKNOWN: Literal["unknown"] = "unknown"

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_ERROR = 0, 1, 2, 3


def first_anomaly_words(first: dict[str, Any]) -> str:
    """How a checker's `first_anomaly` is named: "first anomaly", unless its search ran out of time
    before it could rule out an earlier one (`proven_first` false)."""
    return "first anomaly" if first.get("proven_first", True) else "an anomaly (an earlier one not ruled out in time)"


def trace_anomaly(first: dict[str, Any]) -> str | None:
    """A first anomaly that is no operation's (a Raft trace's violation) in words: `kind: about (node
    n2)`; None for an operation's (it has an `f`)."""
    if first.get("f") is not None:
        return None
    node = f" (node {first['node']})" if first.get("node") else ""
    return f"{first.get('kind')}: {first.get('about')}{node}"


@dataclass(frozen=True)
class Result:
    """What a checker found: `valid` is True, False or "unknown"; details are JSON-able;
    `summary` is the checker's own one line of what tells (shown by the CLI, report, JUnit)."""

    checker: str
    valid: Valid
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"checker": self.checker, "valid": self.valid, "summary": self.summary, "details": self.details}

    def headline(self) -> str:
        """`linearizable: INVALID (illegal keys: ["k3"])`."""
        return f"{self.checker}: {verdict_word(self.valid)}" + (f" ({self.summary})" if self.summary else "")


class Checker(Protocol):
    """One checker (registered in the entry point group `faultbed.checkers`)."""

    name: str
    description: str

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result: ...


def check_safe(checker: Checker, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None,
               memory_limit_mb: float | None = None) -> Result:
    """`checker.check(...)`, or an unknown Result naming the error when it raises: one broken
    checker never costs the others' verdicts (nor results.json). A checker is kept within the
    check's memory bound (faultbed/memory.py; `memory_limit_mb`, default the process's): past it,
    it is stopped, unknown with the reason. One that keeps the bound itself (`bounds_its_memory`:
    linearizable, whose search in Go stops at it and still reports what it found) runs without."""
    from faultbed.memory import Bound, OutOfMemoryBound, default_memory_floor_mb, default_memory_limit_mb

    try:
        bound = Bound(0, 0) if getattr(checker, "bounds_its_memory", False) else \
            Bound(default_memory_limit_mb() if memory_limit_mb is None else memory_limit_mb, default_memory_floor_mb())
        with bound:
            return checker.check(history, spec, out_dir)
    except OutOfMemoryBound:
        pass  # below, once the exception and the checker's frames it holds are gone
    except Exception as exc:
        # bad input (FaultbedError) says what is wrong; anything else is a bug, named by its type
        error = str(exc) if isinstance(exc, FaultbedError) else f"{type(exc).__name__}: {exc}"
        log.warning("checker %s could not judge: %s", checker.name, error)
        log.debug("checker %s raised", checker.name, exc_info=True)
        return Result(checker.name, UNKNOWN, {"error": error}, summary=f"error: {error}"[:300])
    gc.collect()  # what the checker built, handed back before the next one runs
    log.warning("checker %s stopped: %s", checker.name, bound.reason)
    return Result(checker.name, UNKNOWN, {"reason": bound.reason, "peak_rss_mb": round(bound.peak_mb, 1)},
                  summary=str(bound.reason))


def count_summary(details: dict[str, Any], names: Iterable[str]) -> str:
    """`lost 2, duplicated 1` from the `<name>_count` details that are not zero."""
    return ", ".join(f"{name} {details[name + '_count']}" for name in names if details.get(name + "_count"))


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
