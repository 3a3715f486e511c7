"""A run's checkers, composed: the workload's list by name (plus stats, and node-exits when a node
exited on its own), each through check_safe.

Checkers come from the plugin registry (entry point group `faultbed.checkers`). One that
cannot be loaded or raises gives an `unknown` Result naming the error; the others still run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from faultbed import plugins
from faultbed.checkers.node_exits import has_exits
from faultbed.checkers.result import UNKNOWN, Checker, Result, check_safe
from faultbed.errors import FaultbedError

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

ALWAYS = ("stats",)  # a run in which nothing succeeded proves nothing: every run is checked for it


def checker_names(listed: Sequence[str]) -> tuple[str, ...]:
    """The workload's checkers, then those every run gets, each once."""
    return tuple(dict.fromkeys(tuple(listed) + ALWAYS))


def system_checkers(spec: "TestSpec", run_dir: str | None) -> tuple[str, ...]:
    """What the system adds to every run of it: raft-invariants when it writes a Raft trace
    (traits.raft_trace) and the run kept its nodes' data directories (a bare history has none)."""
    if run_dir is None or not os.path.isdir(os.path.join(run_dir, "data")):
        return ()
    from faultbed.cluster.systems import load_system  # here: 7 ms of imports a bare history never needs

    try:
        system = load_system(spec.system)
    except FaultbedError:
        return ()
    return ("raft-invariants",) if system.traits.raft_trace else ()


def load_checker(name: str) -> Checker:
    return plugins.load("checkers", name)  # type: ignore[no-any-return]


def run_checkers(listed: Sequence[str], history: Sequence[dict[str, Any]], spec: "TestSpec",
                 out_dir: str | None) -> list[Result]:
    """Every checker of `listed` (and ALWAYS, and node-exits when a node exited on its own) on
    `history`; never raises for a checker's fault."""
    results = []
    if has_exits(history):
        listed = tuple(listed) + ("node-exits",)
    for name in checker_names(listed):
        try:
            checker = load_checker(name)
        except FaultbedError as exc:
            results.append(Result(name, UNKNOWN, {"error": str(exc)}, summary=f"error: {exc}"[:300]))
            continue
        results.append(check_safe(checker, history, spec, out_dir))
    return results
