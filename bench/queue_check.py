"""The queue checker on a long, busy queue run: its time and peak memory.

A seeded history of MESSAGES messages (bench's own: five producers publish, five consumers
take each message and ack it, a few retried publishes, a few redeliveries after a failed
ack, the final drain), written once as history.jsonl and checked in a fresh process as a
run's check reads it (HistoryFile, checkers/queue.py). Beside it, in the same run and the
same way, reading and pairing the events alone (faultbed.history.pairs): what any checker
of that history pays before it judges anything. Wall clock and peak resident memory (wait4).

    python -m bench queue_check
    FAULTBED_BENCH_QUEUE_MESSAGES=50000 python -m bench queue_check
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from bench.checker import CACHE, measure

MESSAGES = int(os.environ.get("FAULTBED_BENCH_QUEUE_MESSAGES", "200000"))
PRODUCERS = 5
GENERATOR_VERSION = 1

CHECK = """
import sys, time
from faultbed.checkers.queue import check
from faultbed.history import HistoryFile
started = time.perf_counter()
with HistoryFile(sys.argv[1]) as events:
    result = check(events)
print(f"{time.perf_counter() - started:.2f} s: {result.valid} ({result.summary})")
"""

PAIRS = """
import sys, time
from faultbed.history import HistoryFile, pairs
started = time.perf_counter()
with HistoryFile(sys.argv[1]) as events:
    count = sum(1 for _ in pairs(events))
print(f"{time.perf_counter() - started:.2f} s: {count} operations")
"""


def history(messages: int, seed: int = 1) -> Path:
    """The seeded queue history of `messages` messages, generated once."""
    path = CACHE / f"queue-v{GENERATOR_VERSION}-{messages}-s{seed}" / "history.jsonl"
    if path.exists():
        return path
    print(f"  (generating a queue history of {messages} messages once: {path})", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    write_history(partial, messages, seed)
    partial.rename(path)
    return path


def write_history(path: Path, messages: int, seed: int = 1) -> None:
    """Write the seeded history (every message delivered and acked once: valid) to `path`."""
    rng = random.Random(f"bench-queue:{seed}")
    with open(path, "w") as out:
        index, clock = 0, 0

        def event(**fields: object) -> None:
            nonlocal index, clock
            clock += rng.randint(50_000, 150_000)
            out.write(json.dumps({**fields, "index": index, "time": clock}) + "\n")
            index += 1

        def operation(process: int, f: str, outcome: str, invoke: dict, result: object) -> None:
            event(type="invoke", process=process, f=f, key="jobs", **invoke)
            event(type=outcome, process=process, f=f, key="jobs", value=result, node=f"n{rng.randint(1, 3)}")

        for number in range(messages):
            producer, consumer = number % PRODUCERS, PRODUCERS + number % PRODUCERS
            msg_id = f"p{producer}-{number}"
            body: dict[str, Any] = {"msg_id": msg_id, "body": f"b-{number}"}
            if rng.random() < 0.01:  # a publish whose answer was lost, retried
                operation(producer, "publish", "fail", {"value": body, "msg_id": msg_id, "attempt": 1}, None)
            operation(producer, "publish", "ok", {"value": body, "msg_id": msg_id, "attempt": 1}, {"msg_id": msg_id})
            deliveries = 1
            if rng.random() < 0.01:  # an ack that failed: the lease runs out and the message comes again
                operation(consumer, "consume", "ok", {"value": None}, {**body, "lease": 7, "deliveries": 1})
                operation(consumer, "ack", "fail", {"value": {"msg_id": msg_id, "lease": 7}, "msg_id": msg_id}, None)
                deliveries = 2
            operation(consumer, "consume", "ok", {"value": None}, {**body, "lease": 8, "deliveries": deliveries})
            operation(consumer, "ack", "ok", {"value": {"msg_id": msg_id, "lease": 8}, "msg_id": msg_id}, None)
        operation(99, "depth", "ok", {"value": None, "final": True}, {"ready": 0, "leased": 0})


def main() -> int:
    path = history(MESSAGES)
    size_mb = path.stat().st_size / 2**20
    lines = []
    for name, script in (("reading and pairing alone", PAIRS), ("the queue checker", CHECK)):
        run = measure([sys.executable, "-c", script, str(path)], timeout=1800)
        said = run.out.strip().splitlines()[-1] if run.out.strip() else f"no answer (exit {run.code})"
        lines.append(f"  {name:26} {run.wall_s:6.2f} s wall {run.peak_mb:6.0f} MB peak   {said}")
        if run.code != 0:
            print("\n".join(lines))
            return 1
    print(f"queue history: {MESSAGES} messages, {size_mb:.0f} MB ({path})")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
