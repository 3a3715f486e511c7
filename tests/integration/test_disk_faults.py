"""Disk faults end to end: power loss and corruption on real raftkv nodes over real FUSE mounts."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from faultbed.cluster.disk import DEVICE_ENV, is_mounted, wanted
from faultbed.cluster.registry import STATE_DIR
from faultbed.plan import resolve
from faultbed.spec import TestSpec
from tests.integration.conftest import history_ops, processes_of_run, results, run_faultbed, wait_for
from tests.integration.test_run_local import _run_id_of, _start_run, latest

pytestmark = pytest.mark.integration

SHORT = ["--nodes", "3", "--time-limit", "8", "--rate", "40", "--concurrency", "4", "--nemesis-interval", "2",
         "--quiet"]


def _nemesis_events(run_dir: Path, f: str) -> list[dict]:
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [e for e in events if e["process"] == "nemesis" and e["f"] == f]


def _mounts_of(run_dir: Path) -> list[str]:
    return [str(run_dir / "mnt" / n) for n in ("n1", "n2", "n3") if is_mounted(str(run_dir / "mnt" / n))]


def test_raftkv_survives_coordinated_power_loss_and_leaves_no_mount(store):
    proc = run_faultbed("run", *SHORT, "--nemesis", "power-loss:all", "--seed", "5", "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = latest(store)
    starts = _nemesis_events(run_dir, "start-power-loss")
    assert starts and starts[0]["nodes"] == ["n1", "n2", "n3"]
    assert results(run_dir)["counts"]["ok"] > 20
    assert _mounts_of(run_dir) == []
    assert os.path.getsize(run_dir / "data" / "n1" / "raft.journal") > 0, "the durable journal is in data/"


def test_corrupt_is_recorded_with_what_it_damaged(store):
    proc = run_faultbed("run", *SHORT, "--nemesis", "corrupt:n1", "--seed", "8", "--store", str(store))
    # whatever raftkv makes of its corrupted n1 (n2 and n3 keep a majority), never an error
    assert proc.returncode in (0, 1, 2), proc.stdout + proc.stderr
    starts = _nemesis_events(latest(store), "start-corrupt")
    assert starts, "a corruption happened"
    damaged = starts[0]["corrupted"][0]
    assert damaged["file"] in ("raft.journal", "raft.dump") and damaged["mode"] in ("bitflip", "truncate")


def test_sigkilled_harness_during_power_loss_leaves_no_mount_after_gc(store):
    proc = _start_run(store, "--nemesis", "power-loss:one", "--nemesis-interval", "1")
    try:
        run_id = _run_id_of(proc)
        wait_for(lambda: store.exists() and history_ops(latest(store)) > 5
                 and _nemesis_events(latest(store), "start-power-loss"), 30, "a power loss")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = latest(store)
    assert _mounts_of(run_dir), "the FUSE mounts outlive a SIGKILLed harness until gc"
    # as if the harness died inside a power loss, after killing n1's daemon and before remounting
    record = json.loads(Path(STATE_DIR, f"{run_id}.json").read_text())
    os.kill(record["processes"]["diskfs-n1"]["pid"], signal.SIGKILL)
    gc = run_faultbed("gc", timeout=60)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert f"unmounted {run_dir / 'mnt' / 'n1'}" in gc.stdout, "the dead mount is detached"
    assert _mounts_of(run_dir) == []
    wait_for(lambda: processes_of_run(run_id) == [], 10, "gc to stop every process of the run")


def test_without_fuse_power_loss_is_one_line_exit_3_and_other_faults_still_validate(store, monkeypatch):
    env_missing = str(store.parent / "no-such-fuse-device")
    monkeypatch.setenv(DEVICE_ENV, env_missing)
    proc = run_faultbed("run", *SHORT, "--nemesis", "power-loss:one", "--store", str(store), timeout=60)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "need FUSE" in lines[0] and env_missing in lines[0], proc.stderr
    assert not store.exists()
    spec = TestSpec(nodes=3, nemesis=("kill:one", "corrupt:one", "partition"))
    resolve(spec)  # corruption needs no FUSE
    assert not wanted(spec.nemesis, spec.options)
