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
    proc = run_faultbed("run", *ARGS, "--store", str(store))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    original = (store / "latest").resolve()
    schedule = json.loads((original / "schedule.json").read_text())
    planned = [e["params"] for e in schedule["events"] if e["action"] == "start"]
    assert planned and all(p["after"] == "ack" and p["delay_ms"] == DELAY_MS for p in planned)
    assert_in_window(original)

    proc = run_faultbed("replay", str(original), "--quiet")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "replay: schedule identical" in proc.stdout
    replayed = (store / "latest").resolve()
    assert replayed != original
    assert_in_window(replayed)


@pytest.mark.parametrize("entry", ["kill-after-ack:soon", "kill-after-ack:-5", "kill-after-ack:99999"])
def test_bad_delays_are_one_line_and_exit_3(store: Path, entry: str) -> None:
    proc = run_faultbed("run", "--nemesis", entry, "--store", str(store))
    assert proc.returncode == 3 and "kill-after-ack" in proc.stderr and proc.stderr.count("\n") == 1
