"""Hunt mode: many short runs within a budget, the fault mix adapting toward interesting runs.

The signal of a run (how close it came to the moments where bugs live), read from its
history and the nodes' Raft traces, per second of test time:

    info outcomes           requests whose fate the client never learnt
    retries                 attempts 2 and later (a request sent again after such an outcome)
    pending at fault time   client requests in flight when a fault started
    leader changes          nodes becoming leader (Raft trace `role: leader`, where there is one)

    signal = (info + retries + 2 * pending at fault + 3 * leader changes) / seconds

The arms are nemesis entries. Each run takes MIX_SIZE of them, chosen by UCB1 (Auer et
al. 2002) over each arm's mean reward: the run's signal divided by the best signal seen,
and 1 (the best) for a run that found an anomaly. Arms never tried come first, then the
upper confidence bound trades what paid off against what was tried least.
"""

from __future__ import annotations

import glob
import json
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

WEIGHTS = {"info": 1.0, "retries": 1.0, "pending_at_fault": 2.0, "leader_changes": 3.0}
EXPLORATION = 0.5   # UCB1's exploration constant (rewards are in [0, 1])
MIX_SIZE = 2        # nemesis entries per hunt run
FINAL_PROCESS = 1_000_000  # final reads and drains run as processes from here: not the main phase


@dataclass(frozen=True)
class Signal:
    """What happened in one run that makes a bug likelier to show."""

    info: int = 0
    retries: int = 0
    pending_at_fault: int = 0
    leader_changes: int = 0
    seconds: float = 1.0

    def score(self) -> float:
        """Interesting events per second of test time (weights in WEIGHTS)."""
        total = sum(weight * getattr(self, name) for name, weight in WEIGHTS.items())
        return total / max(self.seconds, 1e-9)

    def to_json(self) -> dict[str, Any]:
        return {"info": self.info, "retries": self.retries, "pending_at_fault": self.pending_at_fault,
                "leader_changes": self.leader_changes, "seconds": self.seconds, "score": round(self.score(), 3)}


def signal_of(run_dir: str, seconds: float) -> Signal:
    """The signal of a finished run's directory (zeros for whatever cannot be read)."""
    info = retries = pending_at_fault = 0
    in_flight: set[Any] = set()
    for event in _events(os.path.join(run_dir, "history.jsonl")):
        process = event.get("process")
        if process == "nemesis":
            if str(event.get("f", "")).startswith("start-") and event.get("applied", True) is not False:
                pending_at_fault += len(in_flight)
            continue
        if not isinstance(process, int) or process >= FINAL_PROCESS:
            continue
        if event.get("type") == "invoke":
            in_flight.add(process)
            attempt = event.get("attempt")
            retries += isinstance(attempt, int) and attempt >= 2
        else:
            in_flight.discard(process)
            info += event.get("type") == "info"
    return Signal(info, retries, pending_at_fault, leader_changes(run_dir), seconds)


def leader_changes(run_dir: str) -> int:
    """Times any node became leader, from the nodes' Raft traces (0 for systems without one)."""
    count = 0
    for path in glob.glob(os.path.join(run_dir, "data", "*", "*.trace.jsonl")):
        for event in _events(path):
            count += event.get("event") == "role" and event.get("role") == "leader"
    return count


def _events(path: str) -> list[dict[str, Any]]:
    events = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a killed node
                if isinstance(event, dict):
                    events.append(event)
    except OSError:
        pass
    return events


@dataclass
class Arm:
    """One nemesis entry and what the runs that used it gave."""

    entry: str
    runs: int = 0
    scores: list[float] = field(default_factory=list)
    detections: int = 0


class FaultMix:
    """Chooses each run's nemesis entries by UCB1 and learns from each run's signal."""

    def __init__(self, entries: Sequence[str], rng: random.Random, size: int = MIX_SIZE) -> None:
        if not entries:
            raise ValueError("hunt needs at least one nemesis entry")
        self.arms = {entry: Arm(entry) for entry in entries}
        self.rng = rng
        self.size = min(size, len(self.arms))
        self.best = 0.0
        self.total = 0

    def reward(self, arm: Arm) -> float:
        """The arm's mean reward in [0, 1]: each run's score over the best seen, 1 for a detection."""
        if not arm.runs:
            return 0.0
        best = self.best or 1.0
        return sum(min(1.0, s / best) for s in arm.scores) / arm.runs

    def bound(self, arm: Arm) -> float:
        """UCB1: the mean reward plus the exploration bonus (infinite for an arm never tried)."""
        if not arm.runs:
            return math.inf
        return self.reward(arm) + EXPLORATION * math.sqrt(math.log(max(self.total, 1)) / arm.runs)

    def choose(self) -> tuple[str, ...]:
        """The next run's entries: the `size` highest bounds, ties broken at random."""
        ranked = sorted(self.arms.values(), key=lambda a: (self.bound(a), self.rng.random()), reverse=True)
        return tuple(arm.entry for arm in ranked[:self.size])

    def learn(self, entries: Sequence[str], signal: Signal, detected: bool) -> None:
        """Credit the run's score (the best score so far when it found an anomaly) to its entries."""
        score = signal.score()
        self.best = max(self.best, score)
        credited = self.best if detected else score
        self.total += 1
        for entry in entries:
            arm = self.arms[entry]
            arm.runs += 1
            arm.scores.append(credited)
            arm.detections += detected

    def table(self) -> list[dict[str, Any]]:
        """Every arm: runs, detections, mean credited score (signal per second), reward, bound (best first)."""
        rows = [{"entry": a.entry, "runs": a.runs, "detections": a.detections,
                 "mean_score": round(sum(a.scores) / a.runs, 2) if a.runs else None,
                 "reward": round(self.reward(a), 3), "bound": round(self.bound(a), 3) if a.runs else None}
                for a in self.arms.values()]
        return sorted(rows, key=lambda r: (r["reward"], r["runs"]), reverse=True)
