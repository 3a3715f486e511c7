"""The lost messages of a RabbitMQ run, beside what the nodes logged at the time.

    python -m bench.rabbitmq_losses RUN_DIR [--before 8] [--after 15]

For every message the queue checker found lost (confirmed, never delivered): the node that
confirmed it and when (seconds into the run), and the node log lines around that moment that
explain a loss (nodes seen down, minority detected, mirrors promoted, nodes stopped and
restarted, and every line of the message's queue).

A run's history counts time from its own start (a monotonic clock); the node logs carry wall
clock time. The two are tied by pause_minority: a node that stops closes its clients'
connections (log: `connection_forced`), and a client sees CONNECTION_FORCED after that, so
time 0 is at or after `close - seen`; the client's last acknowledged operation through that
node came before the close, so time 0 is at or before `close - last_ok`. Closes and sightings
are paired by the time 0 most pairs agree on. docs/RABBITMQ.md explains its losses this way.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

AGREE = timedelta(seconds=2)        # pairs whose time 0 lies within this of the best one agree with it
BURST = 5.0                         # closes (or sightings) closer than this are one stop of a node
TELLING = re.compile(r"Promoting|minority|rabbit on node \S+ (down|up)|not responding|Stopping RabbitMQ"
                     r"|Starting RabbitMQ|no synchronised|Stopping all nodes")
NOISE = re.compile(r"Synchronising: batch size")


@dataclass(frozen=True)
class Origin:
    """Bounds of the wall clock time of the run's time 0 (latest is None when nothing bounds it above)."""

    earliest: datetime
    latest: datetime | None

    def wall(self, seconds: float) -> str:
        low = (self.earliest + timedelta(seconds=seconds)).time()
        high = (self.latest + timedelta(seconds=seconds)).time() if self.latest else "?"
        return f"{low}-{high}"


def log_time(line: str) -> datetime | None:
    try:
        return datetime.fromisoformat(line[:26])
    except ValueError:
        return None


def bursts(times: list[Any], gap: Any) -> list[Any]:
    """The first of each run of times no more than `gap` apart."""
    firsts: list[Any] = []
    last = None
    for t in sorted(times):
        if last is None or t - last > gap:
            firsts.append(t)
        last = t
    return firsts


def node_logs(run: Path) -> dict[str, list[str]]:
    return {path.stem: path.read_text(errors="replace").splitlines() for path in sorted(run.glob("nodes/*.log"))}


def origin(history: list[dict[str, Any]], logs: dict[str, list[str]]) -> Origin | None:
    """Time 0 on the nodes' wall clock, from the pause_minority stops; None when no node stopped."""
    pairs: list[tuple[str, datetime, float, datetime]] = []
    for node, lines in logs.items():
        closes = bursts([t for t in map(log_time, (l for l in lines if "connection_forced" in l)) if t],
                        timedelta(seconds=BURST))
        seen = bursts([e["time"] / 1e9 for e in history if e.get("node") == node
                       and "CONNECTION_FORCED" in str(e.get("error", ""))], BURST)
        pairs += [(node, close, t, close - timedelta(seconds=t)) for close in closes for t in seen]
    if not pairs:
        return None
    best = max(pairs, key=lambda p: sum(abs(q[3] - p[3]) < AGREE for q in pairs))[3]
    lows: list[datetime] = []
    highs: list[datetime] = []
    for node, close, t, low in pairs:
        if abs(low - best) >= AGREE:
            continue
        lows.append(low)
        oks = [e["time"] / 1e9 for e in history
               if e.get("node") == node and e.get("type") == "ok" and e["time"] / 1e9 < t]
        if oks:
            highs.append(close - timedelta(seconds=max(oks)))
    return Origin(max(lows), min(highs) if highs else None)


def confirms(history: list[dict[str, Any]], msg_id: str) -> list[dict[str, Any]]:
    return [e for e in history if e.get("type") == "ok" and e.get("f") == "publish"
            and isinstance(e.get("value"), dict) and e["value"].get("msg_id") == msg_id]


def timeline(logs: dict[str, list[str]], queues: set[str], start: datetime, end: datetime) -> list[str]:
    """The telling log lines of every node between start and end, in time order, node first."""
    named = re.compile("|".join(re.escape(f"'{q}'") for q in sorted(queues))) if queues else None
    rows = []
    for node, lines in logs.items():
        for line in lines:
            at = log_time(line)
            if at is None or not start <= at <= end or NOISE.search(line):
                continue
            if TELLING.search(line) or (named is not None and named.search(line)):
                rows.append((at, f"{node} {line[11:26]} {line[33:].strip()}"))
    return [text for _, text in sorted(rows)]


def report(run: Path, before: float = 8.0, after: float = 15.0) -> list[str]:
    results = json.loads((run / "results.json").read_text())
    queue = next(r for r in results["results"] if r["checker"] == "queue")
    lost = queue["details"].get("lost", [])
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    logs = node_logs(run)
    out = [f"{run}: {len(lost)} lost of {queue['details'].get('acknowledged_publishes')} confirmed publishes"]
    out += [f"  {e['time'] / 1e9:7.2f} s  {e['f']} {e.get('value')}" for e in history if e.get("process") == "nemesis"]
    if not lost:
        return out
    zero = origin(history, logs)
    if zero is None:
        out.append("  time 0 unknown: no node was stopped")
    else:
        crossed = zero.latest is not None and zero.latest < zero.earliest
        out.append(f"  time 0 at {zero.wall(0)} (node clock)" + (
            f"; the bounds cross by {(zero.earliest - zero.latest).total_seconds() * 1000:.0f} ms "
            "(a log line written after its event)" if crossed and zero.latest else ""))
    times = []
    for message in lost:
        for ok in confirms(history, message["msg_id"]):
            seconds = ok["time"] / 1e9
            times.append(seconds)
            wall = f" ({zero.wall(seconds)})" if zero else ""
            out.append(f"  lost {message['msg_id']} in {message['queue']}: confirmed through {ok.get('node')} "
                       f"at {seconds:.3f} s{wall}")
    if zero and times:
        start = zero.earliest + timedelta(seconds=min(times) - before)
        end = (zero.latest or zero.earliest) + timedelta(seconds=max(times) + after)
        out.append(f"  node logs {start.time()} to {end.time()}:")
        out += [f"    {row}" for row in timeline(logs, {m["queue"] for m in lost}, start, end)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rabbitmq_losses", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a rabbitmq run's results directory")
    parser.add_argument("--before", type=float, default=8.0, help="seconds of log before the first confirm")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of log after the last confirm")
    ns = parser.parse_args(argv)
    if not (ns.run / "results.json").is_file() or not (ns.run / "history.jsonl").is_file():
        parser.exit(3, f"rabbitmq_losses: {ns.run} is not a run directory (no results.json or history.jsonl)\n")
    try:
        lines = report(ns.run, ns.before, ns.after)
    except StopIteration:
        parser.exit(3, f"rabbitmq_losses: {ns.run} has no queue checker result (not a queue workload run)\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
