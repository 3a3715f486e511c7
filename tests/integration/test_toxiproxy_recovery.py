"""A run whose Toxiproxy server stops answering mid-run still heals, checks and gives a verdict.

SIGSTOP of the real toxiproxy-server simulates its API wedging (Toxiproxy #159/#210:
every call on a proxy hangs once a toxic change waited on a dead receiver; a
stopped process hangs every call the same way); SIGKILL simulates the server
dying. Either way the run must restart it, re-create the mesh as recorded, heal,
check, and exit with a verdict: issue 17 lost 1 run in 34 to exit 3 here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from faultbed.cluster.registry import process_start_time
from tests.integration.conftest import ROOT, faultbed_command, history_ops, processes_of_run, results, wait_for
from tests.integration.test_interrupts import run_record

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["sigstop", "sigkill"])
def test_run_survives_its_toxiproxy_server_stopping_mid_run(tmp_path: Path, sig: signal.Signals) -> None:
    store = tmp_path / "store"
    proc = subprocess.Popen(faultbed_command("run", "--nodes", "3", "--time-limit", "8", "--rate", "50",
                                             "--concurrency", "4", "--nemesis", "partition,latency",
                                             "--nemesis-interval", "1.5", "--seed", "5", "--quiet",
                                             "--store", str(store)),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        record = run_record(store)
        run_dir = Path(record["run_dir"])
        wait_for(lambda: history_ops(run_dir) > 10, 60, "some completed operations")
        toxiproxy = record["processes"]["toxiproxy"]
        assert process_start_time(toxiproxy["pid"]) == toxiproxy["start"]
        os.kill(toxiproxy["pid"], sig)
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err  # correct raftkv: valid, not exit 3 and not a false alarm
    assert results(run_dir)["valid"] is True
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    nemesis = [e for e in events if e["process"] == "nemesis"]
    assert any(e["f"] == "toxiproxy-restarted" for e in nemesis), [e["f"] for e in nemesis]
    heal = [e for e in nemesis if e["f"] == "heal"]
    assert len(heal) == 1 and heal[0]["ready"] is True and "error" not in heal[0], heal
    assert heal[0]["value"].startswith("healed: network"), heal[0]
    finals = [e for e in events if isinstance(e["process"], int) and e["process"] >= 1_000_000 and e["type"] == "ok"]
    assert finals, "the final phase ran after the heal"
    assert process_start_time(toxiproxy["pid"]) != toxiproxy["start"], "the stuck server was replaced"
    assert processes_of_run(results(run_dir)["run_id"]) == []
