"""An aimed fault on real raftkv: kill-after-ack fires inside its window after an acknowledged write,
and `faultbed replay` aims it again the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import run_faultbed

pytestmark = pytest.mark.integration

DELAY_MS = 100
SLACK_MS = 400  # the kill itself and a loaded machine; the window is [DELAY_MS, DELAY_MS + SLACK_MS]
ARGS = ["--nodes", "3", "--time-limit", "7", "--rate", "50", "--concurrency", "4",
        "--nemesis", f"kill-after-ack:{DELAY_MS}", "--nemesis-interval", "2", "--seed", "11", "--quiet"]


def aimed_starts(run_dir: Path) -> list[tuple[dict, dict]]:
    """(start event, the acknowledgement it aimed at) for every kill-after-ack that fired."""
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    by_index = {e["index"]: e for e in events}
    starts = [e for e in events if e["process"] == "nemesis" and e["f"] == "start-kill-after-ack"]
    assert starts and all(e.get("applied", True) for e in starts), starts
    return [(e, by_index[e["aimed_at"]["index"]]) for e in starts]


def assert_in_window(run_dir: Path) -> None:
    for start, ack in aimed_starts(run_dir):
        assert ack["type"] == "ok" and ack["f"] != "read" and isinstance(ack["process"], int)
        assert start["aimed_at"]["time"] == ack["time"]
        since_ack_ms = (start["fired_ns"] - ack["time"]) / 1e6
        assert DELAY_MS <= since_ack_ms <= DELAY_MS + SLACK_MS, since_ack_ms
        assert start["nodes"] == [start["leader"]] and start["target"] == "primary"


def test_kill_after_ack_fires_in_its_window_and_replay_reaims_it(store: Path) -> None:
    original, replayed = run_and_replay(ARGS, store)
    planned = [params for params in planned_starts(original).values()]
    assert planned and all(p["after"] == "ack" and p["delay_ms"] == DELAY_MS for p in planned)
    assert_in_window(original)
    assert_in_window(replayed)


def run_and_replay(args: list[str], store: Path) -> tuple[Path, Path]:
    """A run and its replay (which says its schedule is identical): both results directories."""
    proc = run_faultbed("run", *args, "--store", str(store))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    original = (store / "latest").resolve()
    proc = run_faultbed("replay", str(original), "--quiet")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "replay: schedule identical" in proc.stdout
    replayed = (store / "latest").resolve()
    assert replayed != original
    return original, replayed


def planned_starts(run_dir: Path) -> dict[str, dict]:
    """Each start's planned parameters in schedule.json, by fault id."""
    schedule = json.loads((run_dir / "schedule.json").read_text())
    return {e["id"]: e["params"] for e in schedule["events"] if e["action"] == "start"}


@pytest.mark.parametrize("entry", ["kill-after-ack:soon", "kill-after-ack:-5", "kill-after-ack:99999"])
def test_bad_delays_are_one_line_and_exit_3(store: Path, entry: str) -> None:
    proc = run_faultbed("run", "--nemesis", entry, "--store", str(store))
    assert proc.returncode == 3 and "kill-after-ack" in proc.stderr and proc.stderr.count("\n") == 1


IN_FLIGHT_ARGS = ["--workload", "idempotency", "--nodes", "3", "--time-limit", "8", "--rate", "60",
                  "--concurrency", "6", "--nemesis", "kill-in-flight,isolate-in-flight:1,latency-on-retry:300",
                  "--nemesis-interval", "2", "--seed", "12", "--quiet"]
IN_FLIGHT_SLACK_MS = 750  # from sending to the decision that the write is still pending, on a loaded machine
ACTION_SLACK_MS = 3000    # the kill, or the Toxiproxy calls of the cut, behind another fault's action (the lock)
PENDING_TOLERANCE_NS = 1_000_000  # a completion stamped just before the check, its watcher not yet called


def starts_of(events: list[dict], kind: str) -> list[dict]:
    starts = [e for e in events if e["process"] == "nemesis" and e["f"] == f"start-{kind}"]
    assert starts, f"no {kind} started"
    return starts


def completion_of(events: list[dict], invoke: dict) -> dict | None:
    return next((e for e in events if e["index"] > invoke["index"] and e["process"] == invoke["process"]), None)


def assert_in_flight_aims(run_dir: Path) -> None:
    """Each in-flight kind hit the node a client's write had just been sent to, within its window,
    while that write was unanswered; latency-on-retry slowed the primary's links right after a retry."""
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    by_index = {e["index"]: e for e in events}
    fired = {kind: [s for s in starts_of(events, kind) if s.get("applied", True)]
             for kind in ("kill-in-flight", "isolate-in-flight", "latency-on-retry")}
    assert all(fired.values()), {k: len(v) for k, v in fired.items()}
    for kind, delay in (("kill-in-flight", 0), ("isolate-in-flight", 1)):
        for start in fired[kind]:
            sent = by_index[start["aimed_at"]["index"]]
            assert sent["type"] == "invoke" and sent["f"] == "apply" and isinstance(sent["process"], int)
            assert start["nodes"] == [sent["node"]] and start["target"] == "request-node"
            assert delay <= (start["pending_ns"] - sent["time"]) / 1e6 <= delay + IN_FLIGHT_SLACK_MS, start
            assert 0 <= (start["fired_ns"] - start["pending_ns"]) / 1e6 <= ACTION_SLACK_MS, start
            answer = completion_of(events, sent)
            assert answer is None or answer["time"] >= start["pending_ns"] - PENDING_TOLERANCE_NS, (start, answer)
        if kind == "isolate-in-flight":
            node = fired[kind][0]["nodes"][0]
            grudge = fired[kind][0]["grudge"]
            assert sorted(grudge[node]) == sorted(n for n in grudge if n != node)
    for start in fired["latency-on-retry"]:
        retry = by_index[start["aimed_at"]["index"]]
        assert retry["type"] == "invoke" and retry["attempt"] >= 2
        assert 0 <= (start["fired_ns"] - retry["time"]) / 1e6 <= IN_FLIGHT_SLACK_MS + 1000  # + asking the leader
        assert start["attributes"]["latency"] == 300 and start["links"]
        assert all(start["nodes"][0] in link for link in start["links"])


def test_in_flight_aims_fire_in_their_windows_and_replay_reaims_them(store: Path) -> None:
    original, replayed = run_and_replay(IN_FLIGHT_ARGS, store)
    planned = planned_starts(original)
    assert planned["kill-in-flight#1"] == {"target": "request-node", "after": "write-sent", "delay_ms": 0}
    assert planned["isolate-in-flight:1#1"]["delay_ms"] == 1
    assert planned["latency-on-retry:300#1"]["after"] == "retry-sent"
    assert_in_flight_aims(original)
    assert_in_flight_aims(replayed)


@pytest.mark.parametrize("entry", ["kill-in-flight:now", "isolate-in-flight:-1", "latency-on-retry:20000"])
def test_bad_aims_are_one_line_and_exit_3(store: Path, entry: str) -> None:
    proc = run_faultbed("run", "--nemesis", entry, "--store", str(store))
    assert proc.returncode == 3 and entry.split(":")[0] in proc.stderr and proc.stderr.count("\n") == 1
