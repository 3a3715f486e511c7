"""Nodes that exited on their own: a crash of the system under test is a finding.

faultbed records a `node-exit` event (process "nemesis") for every node it found dead although
it never stopped it (nemesis/executor.py `record_node_exits`): the exit status when the backend
knows it and the end of the node's log. Such an exit is an anomaly (as Maelstrom fails a test
whose node crashes) unless a disk fault hit that node before it (a start event whose details say
`disk_fault: true` and name the node in `nodes`): exiting when the disk fails or returns damaged
data may be a system failing safely, so those exits are listed but not counted. The checker runs
only on histories that have a `node-exit` event (checkers/compose.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from faultbed.checkers.result import Result
from faultbed.history import nemesis_events

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

EXIT_EVENT = "node-exit"


def has_exits(history: Sequence[dict[str, Any]]) -> bool:
    return any(e.get("f") == EXIT_EVENT for e in nemesis_events(history))


def check_node_exits(history: Sequence[dict[str, Any]]) -> Result:
    disk_hit: set[str] = set()
    crashes: list[dict[str, Any]] = []
    excused: list[dict[str, Any]] = []
    for event in nemesis_events(history):
        if event.get("disk_fault") and str(event.get("f", "")).startswith("start-"):
            disk_hit.update(str(n) for n in event.get("nodes") or ())
        elif event.get("f") == EXIT_EVENT:
            found = {"node": event.get("node"), "time": event.get("time"), "status": event.get("status"),
                     "what": event.get("value"), "log": event.get("log") or []}
            (excused if found["node"] in disk_hit else crashes).append(found)
    details: dict[str, Any] = {"crashes": crashes, "after_disk_faults": excused}
    if crashes:
        first = crashes[0]
        seconds = f" at {first['time'] / 1e9:.1f} s" if isinstance(first.get("time"), (int, float)) else ""
        more = f" (+{len(crashes) - 1} more)" if len(crashes) > 1 else ""
        last = f"; its log ends: {first['log'][-1][:160]}" if first["log"] else ""
        return Result("node-exits", False, details, f"{first['what']}, found{seconds}{more}{last}")
    return Result("node-exits", True, details,
                  f"{len(excused)} exit(s) after disk faults, none otherwise" if excused else "no node exited on its own")


class NodeExitsChecker:
    """Nodes found dead that faultbed did not stop: invalid unless a disk fault hit them first."""

    name = "node-exits"
    description = "a node that exited on its own (not stopped by faultbed, no disk fault on it) is an anomaly"

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        return check_node_exits(history)


NODE_EXITS = NodeExitsChecker()
