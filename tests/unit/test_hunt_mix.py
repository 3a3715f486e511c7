"""Hunt mode's signal (read from a run directory) and its adaptive fault mix (UCB1 over nemesis entries)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from faultbed.hunt import FaultMix, Signal, signal_of


def write_run(run_dir: Path, events: list[dict], traces: dict[str, list[dict]] | None = None) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for node, records in (traces or {}).items():
        (run_dir / "data" / node).mkdir(parents=True)
        lines = "".join(json.dumps(r) + "\n" for r in records) + '{"torn'  # a killed node's last line
        (run_dir / "data" / node / "raft.trace.jsonl").write_text(lines)
    return run_dir


def test_the_signal_counts_info_retries_requests_in_flight_at_a_fault_and_new_leaders(tmp_path: Path) -> None:
    events = [
        {"type": "invoke", "process": 0, "f": "apply", "attempt": 1},
        {"type": "invoke", "process": 1, "f": "apply", "attempt": 1},
        {"type": "info", "process": "nemesis", "f": "start-kill"},                   # 2 in flight
        {"type": "info", "process": "nemesis", "f": "start-kill-in-flight", "applied": False},  # not applied
        {"type": "info", "process": 0, "f": "apply"},                                # unknown outcome
        {"type": "invoke", "process": 10, "f": "apply", "attempt": 2},               # its retry
        {"type": "ok", "process": 10, "f": "apply"},
        {"type": "ok", "process": 1, "f": "apply"},
        {"type": "info", "process": "nemesis", "f": "start-partition"},              # none in flight
        {"type": "invoke", "process": 1_000_000, "f": "read-ledger", "attempt": 3},  # final: not counted
        {"type": "info", "process": 1_000_000, "f": "read-ledger"},
    ]
    traces = {"n1": [{"event": "role", "role": "leader", "term": 1}, {"event": "role", "role": "follower"}],
              "n2": [{"event": "role", "role": "leader", "term": 2}, {"event": "commit", "role": "leader"}]}
    signal = signal_of(str(write_run(tmp_path / "run", events, traces)), seconds=4.0)
    assert (signal.info, signal.retries, signal.pending_at_fault, signal.leader_changes) == (1, 1, 2, 2)
    assert signal.score() == (1 + 1 + 2 * 2 + 3 * 2) / 4.0


def test_a_run_directory_without_a_history_gives_a_zero_signal(tmp_path: Path) -> None:
    assert signal_of(str(tmp_path / "missing"), seconds=10).score() == 0.0


def test_every_arm_is_tried_before_any_is_tried_twice() -> None:
    mix = FaultMix(["kill", "partition", "pause", "latency"], random.Random(1), size=2)
    seen: list[str] = []
    for _ in range(2):
        chosen = mix.choose()
        seen.extend(chosen)
        mix.learn(chosen, Signal(info=1, seconds=1), detected=False)
    assert sorted(seen) == ["kill", "latency", "partition", "pause"]


def test_the_mix_moves_toward_the_arm_with_the_stronger_signal() -> None:
    mix = FaultMix(["quiet", "loud", "dull"], random.Random(2), size=1)
    strength = {"quiet": 1, "loud": 20, "dull": 2}
    picks = []
    for _ in range(40):
        (entry,) = mix.choose()
        picks.append(entry)
        mix.learn([entry], Signal(retries=strength[entry], seconds=1), detected=False)
    assert picks[-20:].count("loud") >= 15, picks
    assert mix.table()[0]["entry"] == "loud"


def test_a_detection_counts_as_the_best_signal_seen() -> None:
    mix = FaultMix(["finds", "busy"], random.Random(3), size=1)
    mix.learn(["busy"], Signal(retries=50, seconds=1), detected=False)
    mix.learn(["finds"], Signal(retries=1, seconds=1), detected=True)
    rows = {row["entry"]: row for row in mix.table()}
    assert rows["finds"]["reward"] == rows["busy"]["reward"] == 1.0
    assert rows["finds"]["detections"] == 1 and rows["busy"]["detections"] == 0
