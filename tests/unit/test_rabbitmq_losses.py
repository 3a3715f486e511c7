"""bench.rabbitmq_losses: a lost message's confirm placed on the nodes' clock, and the log lines around it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bench import rabbitmq_losses

FORCED = "[error] <0.9.0>  operation none caused a connection exception connection_forced: \"shutdown\""


def log(at: str, text: str) -> str:
    return f"2026-12-01 {at}+00:00 {text}"


def write_run(run: Path, history: list[dict[str, Any]], logs: dict[str, list[str]], lost: list[dict[str, Any]]) -> Path:
    (run / "nodes").mkdir(parents=True)
    (run / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in history))
    for node, lines in logs.items():
        (run / "nodes" / f"{node}.log").write_text("\n".join(lines) + "\n")
    queue = {"checker": "queue", "valid": not lost,
             "details": {"lost": lost, "acknowledged_publishes": 2}}
    (run / "results.json").write_text(json.dumps({"results": [queue]}))
    return run


def seconds(s: float) -> int:
    return int(s * 1e9)


def minority_run(tmp_path: Path) -> Path:
    """n2 confirms 0-1 (queue q1) at 10.0 s, pause_minority closes its clients at 11:00:10.300000
    (seen at 10.5 s), so time 0 lies between 10:59:59.8 and 11:00:00.3. n3 stops later (40.0 s),
    and n2 has a second close (at 11:00:45) no client saw: a pairing that must not count."""
    history = [
        {"type": "info", "process": "nemesis", "f": "start-partition", "value": "n1,n2 | n3", "time": seconds(5)},
        {"type": "ok", "process": 1, "f": "publish", "key": "q1", "value": {"msg_id": "0-1"}, "node": "n2",
         "time": seconds(10.0)},
        {"type": "info", "process": 1, "f": "publish", "node": "n2", "time": seconds(10.5),
         "error": "no publisher confirm: ConnectionClosedByBroker: (320, \"CONNECTION_FORCED - shutdown\")"},
        {"type": "ok", "process": 2, "f": "consume", "key": "q3", "value": None, "node": "n3", "time": seconds(39.0)},
        {"type": "info", "process": 2, "f": "consume", "node": "n3", "time": seconds(40.1),
         "error": "no answer to basic.get: ConnectionClosedByBroker: (320, \"CONNECTION_FORCED - shutdown\")"},
    ]
    logs = {
        "n1": [log("11:00:09.900000", "[info] <0.5.0> Mirrored queue 'q1' in vhost '/': Promoting mirror <a> to "
                                      "leader"),
               log("11:00:09.950000", "[info] <0.5.0> Mirrored queue 'q1' in vhost '/': Synchronising: batch size: "
                                      "4096"),
               log("11:00:09.960000", "[info] <0.6.0> Mirrored queue 'q7' in vhost '/': Synchronising: 3 messages"),
               log("11:05:00.000000", "[info] <0.5.0> Mirrored queue 'q1' in vhost '/': much later")],
        "n2": [log("11:00:10.200000", "[warning] <0.4.0> Cluster minority/secondary status detected"),
               log("11:00:10.300000", FORCED), log("11:00:10.300100", FORCED),
               log("11:00:45.000000", FORCED)],
        "n3": [log("11:00:40.050000", FORCED)],
    }
    return write_run(tmp_path / "run", history, logs, [{"msg_id": "0-1", "queue": "q1", "published_by": 1}])


def test_time_zero_is_bounded_by_the_agreeing_closes_and_the_last_acknowledgement(tmp_path: Path) -> None:
    run = minority_run(tmp_path)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    zero = rabbitmq_losses.origin(history, rabbitmq_losses.node_logs(run))
    assert zero is not None
    # n2: 11:00:10.3 - 10.5 s; n3: 11:00:40.05 - 40.1 s (both 10:59:59.8-ish; the later one is the bound)
    assert zero.earliest == datetime.fromisoformat("2026-12-01 10:59:59.950000")
    # n2's last ok at 10.0 s: 11:00:10.3 - 10.0; n3's at 39.0 s: 11:00:40.05 - 39.0 (later, so not the bound)
    assert zero.latest == datetime.fromisoformat("2026-12-01 11:00:00.300000")


def test_the_report_places_the_confirm_and_shows_only_telling_lines_of_the_window(tmp_path: Path) -> None:
    lines = rabbitmq_losses.report(minority_run(tmp_path), before=1.0, after=2.0)
    text = "\n".join(lines)
    assert "lost 0-1 in q1: confirmed through n2 at 10.000 s (11:00:09.950000-11:00:10.300000)" in text
    assert "n1 11:00:09.900000 [info] <0.5.0> Mirrored queue 'q1' in vhost '/': Promoting mirror" in text
    assert "n2 11:00:10.200000 [warning] <0.4.0> Cluster minority/secondary status detected" in text
    assert "batch size" not in text          # noise
    assert "'q7'" not in text                # another queue's routine line
    assert "much later" not in text          # outside the window
    assert "5.00 s  start-partition n1,n2 | n3" in text


def test_a_run_without_losses_lists_its_faults_only(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [{"type": "info", "process": "nemesis", "f": "heal", "value": "healed",
                                        "time": seconds(60)}], {"n1": []}, [])
    assert rabbitmq_losses.report(run) == [f"{run}: 0 lost of 2 confirmed publishes", "    60.00 s  heal healed"]


def test_not_a_run_directory_is_one_line_and_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rabbitmq_losses.main([str(tmp_path)])
    assert exit_info.value.code == 3
    assert capsys.readouterr().err == (f"rabbitmq_losses: {tmp_path} is not a run directory "
                                       "(no results.json or history.jsonl)\n")
