"""Results directories with synthetic histories, for report and serve tests without a cluster.

Times are chosen, not measured, so events are written as the documented JSON lines
(what HistoryWriter writes) rather than through HistoryWriter's clock.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any, Sequence

from faultbed.checkers.result import Valid

SECOND = 1_000_000_000


def history_events(duration: float = 10.0, rate: float = 40.0, faults: Sequence[tuple[str, float, float]] = (),
                   seed: int = 1) -> list[dict[str, Any]]:
    """Reads and writes by 4 workers; ops during a fault are slow and often info or fail."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for number, (name, start, stop) in enumerate(faults, start=1):
        fault_id = f"{name}#{number}"
        events.append({"type": "info", "process": "nemesis", "f": f"start-{name}", "fault": name, "id": fault_id,
                       "value": f"{name}: n1 cut off from n2,n3", "time": int(start * SECOND)})
        events.append({"type": "info", "process": "nemesis", "f": f"stop-{name}", "fault": name, "id": fault_id,
                       "value": f"{name} healed", "time": int(stop * SECOND)})
    process_of = list(range(4))   # worker -> its current process id
    free_at = [0.0] * 4
    t = 0.0
    while t < duration:
        t += rng.expovariate(rate)
        worker = rng.randrange(4)
        if free_at[worker] > t:
            continue
        faulted = any(start <= t <= stop for _, start, stop in faults)
        latency = rng.uniform(0.2, 1.0) if faulted else rng.uniform(0.001, 0.02)
        type_ = rng.choice(("ok", "info", "fail")) if faulted else "ok"
        f, value, process = rng.choice(("read", "write")), rng.randrange(5), process_of[worker]
        events.append({"type": "invoke", "process": process, "f": f, "key": "k1", "value": value,
                       "time": int(t * SECOND)})
        events.append({"type": type_, "process": process, "f": f, "key": "k1", "value": value, "node": "n1",
                       "time": int((t + latency) * SECOND)})
        free_at[worker] = t + latency
        if type_ == "info":
            process_of[worker] += 4
    events.sort(key=lambda e: e["time"])
    for index, event in enumerate(events):
        event["index"] = index
    return events


def make_run(store_dir: str, stamp: str, valid: Valid | None = True, system: str = "raftkv",
             workload: str = "register", faults: Sequence[tuple[str, float, float]] = (("partition", 3.0, 6.0),),
             node_logs: bool = True, linearizability_html: bool = False) -> str:
    """A results directory as a run leaves it; `valid` None leaves out results.json (a crashed run)."""
    run_dir = os.path.join(store_dir, f"{system}-{workload}", stamp)
    os.makedirs(os.path.join(run_dir, "nodes"))
    spec = {"system": system, "workload": workload, "backend": "local", "nodes": 3, "nemesis": ["partition"],
            "time_limit": 10.0, "rate": 40.0, "seed": 7, "store": store_dir}
    _write_json(os.path.join(run_dir, "spec.json"), spec)
    events = history_events(faults=faults)
    with open(os.path.join(run_dir, "history.jsonl"), "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(e) + "\n" for e in events)
    if valid is not None:
        counts = {t: sum(1 for e in events if e["type"] == t and e["process"] != "nemesis")
                  for t in ("ok", "fail", "info")}
        linearizable = {"checker": "linearizable", "valid": valid,
                        "details": {"model": "kv", "illegal_keys": [] if valid is True else ["k1"]}}
        stats = {"checker": "stats", "valid": True, "details": {"ok": counts["ok"]}}
        _write_json(os.path.join(run_dir, "results.json"), {
            "valid": valid, "counts": counts, "results": [linearizable, stats],
            "replay": f"faultbed replay {run_dir}"})
    if node_logs:
        for node in ("n1", "n2", "n3"):
            with open(os.path.join(run_dir, "nodes", f"{node}.log"), "w", encoding="utf-8") as fh:
                fh.writelines(f"{node} line {i}: raft term {i // 10}\n" for i in range(60))
    if linearizability_html:
        with open(os.path.join(run_dir, "linearizability.html"), "w", encoding="utf-8") as fh:
            fh.write("<html><body>porcupine</body></html>")
    return run_dir


def _write_json(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
