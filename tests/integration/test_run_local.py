"""`faultbed run` end to end on the local backend: real raftkv processes, real Toxiproxy, porcupine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import (ROOT, faultbed_command, history_ops, processes_of_run, results,
                                        run_faultbed, wait_for)

pytestmark = pytest.mark.integration

SHORT = ["--nodes", "3", "--time-limit", "8", "--rate", "50", "--concurrency", "4", "--nemesis-interval", "2",
         "--quiet"]


def latest(store: Path) -> Path:
    return (store / "latest").resolve()


def test_correct_raftkv_under_partitions_is_valid_and_stores_every_artifact(store):
    proc = run_faultbed("run", *SHORT, "--seed", "7", "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = latest(store)
    for name in ("spec.json", "schedule.json", "plan.jsonl", "history.jsonl", "results.json",
                 "nodes/n1.log", "nodes/n3.log"):
        assert (run_dir / name).exists(), name
    assert "verdict: valid" in proc.stdout
    printed = next(line.removeprefix("results: ") for line in proc.stdout.splitlines() if line.startswith("results: "))
    assert Path(printed).resolve() == run_dir, "the results line names this run's directory"
    assert f"replay: faultbed replay {printed}" in proc.stdout.splitlines(), proc.stdout
    verdict = results(run_dir)
    assert verdict["valid"] is True and verdict["counts"]["ok"] > 50
    [raft] = [r for r in verdict["results"] if r["checker"] == "raft-invariants"]  # every raftkv run has it
    assert raft["valid"] is True and sorted(raft["details"]["nodes"]) == ["n1", "n2", "n3"], raft
    assert min(raft["details"]["nodes"].values()) > 10, "every node traced its Raft state"
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert any(e["process"] == "nemesis" for e in events), "partitions were recorded"
    assert verdict["run_id"] and processes_of_run(verdict["run_id"]) == []


def test_stale_reads_bug_is_detected_under_partitions(store):
    proc = run_faultbed("run", "--nodes", "5", "--time-limit", "12", "--nemesis-interval", "3", "--rate", "100",
                        "--bug", "stale-reads", "--seed", "3", "--quiet", "--store", str(store))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verdict: INVALID" in proc.stdout
    assert (latest(store) / "linearizability.html").exists()


def test_pysyncobjs_volatile_vote_is_found_by_raft_invariants_when_every_node_restarts(store):
    # pysyncobj 0.3.11 restarts at term 0: after a kill of every node, terms are reused and one is led twice
    # unless the same node wins it again (9/10 seeds in a 15 s campaign); ~3 kill:all rounds make a miss rare,
    # not impossible (2 of 5 runs of seed 204 in one session): a second seed when the first misses
    for seed in ("204", "205"):
        proc = run_faultbed("run", "--nodes", "3", "--rate", "50", "--concurrency", "4", "--nemesis", "kill:all",
                            "--nemesis-interval", "2", "--time-limit", "14", "--bug", "volatile-vote", "--seed", seed,
                            "--quiet", "--store", str(store))
        if proc.returncode != 0:
            break
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [raft] = [r for r in results(latest(store))["results"] if r["checker"] == "raft-invariants"]
    assert raft["valid"] is False and raft["details"]["first_violation"]["lines"], raft["summary"]
    assert "raft-invariants: INVALID" in proc.stdout
    # its time on the history's clock (origin.json notes the history's time 0): shrink and the report use it
    assert 0 <= raft["details"]["first_anomaly_ms"] <= 14_000 + 10_000, raft["details"]
    assert f"first anomaly at {raft['details']['first_anomaly_ms'] / 1000:.2f}s: {raft['details']['first_anomaly']['kind']}" \
        in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--nodes", "0"], "--nodes"),
    (["--bug", "no-such-bug"], "unknown bug"),
    (["--system", "nosuch"], "unknown system"),
    (["--nemesis", "earthquake"], "earthquake"),
    (["--time-limit", "abc"], "invalid float"),
    (["--workload", "queue"], "does not run workload"),
    (["--system", "etcd"], "runs on the docker or ssh backend only"),
])
def test_bad_input_gives_one_line_and_exit_3(store, args, message):
    proc = run_faultbed("run", *args, "--store", str(store), timeout=60)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 2 and message in lines[-1], proc.stderr  # argparse adds its usage line
    assert "Traceback" not in proc.stderr
    assert not store.exists(), "nothing is started or recorded for a spec that does not validate"


def _start_run(store: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(faultbed_command("run", "--nodes", "3", "--time-limit", "60", "--rate", "50",
                                             "--quiet", "--store", str(store), *extra),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_id_of(proc: subprocess.Popen[str]) -> str:
    """The run id carried by the harness's own child processes (other runs may be going on)."""
    def own_children() -> str | None:
        for pid in processes_of_run():
            try:
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid != proc.pid:
                continue
            for item in environ.split(b"\0"):
                if item.startswith(b"FAULTBED_RUN="):
                    return item.decode().split("=", 1)[1]
        return None
    return wait_for(own_children, 30, "node processes of the run")


def test_ctrl_c_stops_everything_and_keeps_a_checkable_history(store):
    proc = _start_run(store)
    try:
        run_id = _run_id_of(proc)
        wait_for(lambda: store.exists() and history_ops(latest(store)) > 20, 30, "some completed operations")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "history kept" in err
    assert processes_of_run(run_id) == []
    check = run_faultbed("check", str(latest(store)), timeout=60)
    # a prefix of a correct raftkv history (pending operations at the cut) is still linearizable
    assert check.returncode == 0, check.stdout + check.stderr


def test_sigkilled_harness_leaves_nothing_after_gc(store):
    proc = _start_run(store)
    try:
        run_id = _run_id_of(proc)
        wait_for(lambda: store.exists() and history_ops(latest(store)) > 10, 30, "some completed operations")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = processes_of_run(run_id)
    assert left, "nodes and toxiproxy outlive a SIGKILLed harness until gc"
    gc = run_faultbed("gc", timeout=60)
    assert gc.returncode == 0, gc.stderr
    wait_for(lambda: processes_of_run(run_id) == [], 10, "gc to stop every process of the run")


def test_replay_reproduces_schedule_and_operation_plan(store):
    first = run_faultbed("run", *SHORT, "--time-limit", "5", "--seed", "11", "--store", str(store))
    assert first.returncode == 0, first.stdout + first.stderr
    original = latest(store)
    replay = run_faultbed("replay", str(original), "--quiet")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "schedule identical, operation plan identical" in replay.stdout
    assert "verdict reproduced" in replay.stdout
    replayed = latest(store)
    assert replayed != original
    assert (replayed / "schedule.json").read_text() == (original / "schedule.json").read_text()
    assert os.path.getsize(replayed / "plan.jsonl") > 0
