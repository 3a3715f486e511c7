"""Port reservations never collide across processes; gc finds processes a dead harness left."""

import fcntl
import os
import signal
import subprocess
import sys
import time

from faultbed.cluster import registry
from faultbed.cluster.ports import HIGH, LOW, PortReservation

CHILD = """
import sys, time
from faultbed.cluster.ports import PortReservation
r = PortReservation()
print(" ".join(map(str, r.take(200))), flush=True)
time.sleep(30)
"""


def test_reserved_ports_are_below_32768_and_exclusive_across_processes():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        theirs = set(map(int, child.stdout.readline().split()))
        with PortReservation() as mine:
            ours = set(mine.take(200))
        assert len(theirs) == 200 and len(ours) == 200
        assert not theirs & ours
        assert all(LOW <= p < HIGH < 32768 for p in theirs | ours)
    finally:
        child.kill()
        child.wait()


def test_gc_finds_and_stops_processes_of_a_dead_harness(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "STATE_DIR", str(tmp_path))
    # a "harness" that starts a node-like child and is then SIGKILLed
    harness_code = (
        "import os, subprocess, sys, time\n"
        "from cluster import registry\n"
        f"registry.STATE_DIR = {str(tmp_path)!r}\n"
        "rec = registry.RunRecord('deadbeef0001')\n"
        "env = dict(os.environ, FAULTBED_RUN='deadbeef0001')\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], env=env, start_new_session=True)\n"
        "rec.add_process('n1', p.pid)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n")
    harness = subprocess.Popen([sys.executable, "-c", harness_code], stdout=subprocess.PIPE, text=True)
    child_pid = int(harness.stdout.readline())
    try:
        assert "deadbeef0001" in registry.live_run_ids()
        assert not [r for r in registry.stale_runs() if r.run_id == "deadbeef0001"]
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        stale = [r for r in registry.stale_runs() if r.run_id == "deadbeef0001"]
        assert stale and child_pid in stale[0].pids
        registry.kill_processes(stale[0].pids)
        deadline = time.monotonic() + 5
        while registry.process_start_time(child_pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert registry.process_start_time(child_pid) is None
    finally:
        try:
            os.kill(child_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


THREADS = """
import threading, time
for _ in range(4):
    threading.Thread(target=lambda: [time.sleep(0.001) for _ in iter(int, 1)], daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


def test_a_process_is_stopped_only_once_every_thread_of_it_is():
    child = subprocess.Popen([sys.executable, "-c", THREADS], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert len(os.listdir(f"/proc/{child.pid}/task")) == 5
        assert registry.process_state(child.pid) in ("S", "R") and not registry.every_thread_stopped(child.pid)
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while not registry.every_thread_stopped(child.pid):
            assert time.monotonic() < deadline, "SIGSTOP did not stop every thread"
            time.sleep(0.001)
        assert registry.process_state(child.pid) == "T"
        os.kill(child.pid, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while registry.every_thread_stopped(child.pid):  # the sleeping threads wake and run again
            assert time.monotonic() < deadline, "SIGCONT did not start the threads again"
            time.sleep(0.001)
    finally:
        child.kill()
        child.communicate()  # reaped, and its pipe closed
    assert registry.process_state(child.pid) is None and registry.every_thread_stopped(child.pid)
    assert registry.process_start_time(child.pid) is None


def test_a_released_reservation_leaves_no_lock_file_and_an_early_opener_picks_again(tmp_path, monkeypatch):
    """release() unlinks each file under its lock: nothing is left for gc after a clean run, and a process
    that opened a file before it was unlinked gets a lock that holds nothing, which `take` refuses."""
    from faultbed.cluster import ports

    monkeypatch.setattr(ports, "LOCK_DIR", str(tmp_path))
    with PortReservation() as reservation:
        taken = reservation.take(3)
        assert sorted(os.listdir(tmp_path)) == sorted(map(str, taken))
        early = open(tmp_path / str(taken[0]), "ab")  # another process's open, before the release
    try:
        assert os.listdir(tmp_path) == []
        fcntl.flock(early, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once released: its file is unlinked...
        assert not ports._still_linked(str(tmp_path / str(taken[0])), early.fileno())  # ...so it holds nothing
        monkeypatch.setattr(ports, "LOW", taken[0])
        monkeypatch.setattr(ports, "HIGH", taken[0] + 1)
        with PortReservation() as again:  # the same port, on a new file, while the early lock is still held
            assert again.take(1) == [taken[0]]
            assert os.listdir(tmp_path) == [str(taken[0])]
    finally:
        early.close()
    assert os.listdir(tmp_path) == []
