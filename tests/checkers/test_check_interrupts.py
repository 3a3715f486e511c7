"""Ctrl-C stops a check at once: the main thread's calls into Go (faultbed/native.py in_go) are made by
a thread of ours while it waits in Python, and `faultbed check`'s own threads are not waited for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.histories import Shape, generate
from faultbed.crash import EXIT_INTERRUPTED
from faultbed.native import in_go, in_go_later

REPO = Path(__file__).resolve().parents[2]


def test_the_main_threads_calls_are_made_by_one_other_thread_in_the_order_queued() -> None:
    assert threading.current_thread() is threading.main_thread()
    made: list[tuple[int, threading.Thread]] = []
    first = in_go_later(lambda: (time.sleep(0.05), made.append((1, threading.current_thread())))[0])
    second = in_go_later(lambda n: made.append((n, threading.current_thread())) or n * 2, 2)
    assert second.answer() == 4 and first.answer() is None
    assert [n for n, _ in made] == [1, 2]  # the first, though slower, was made first
    assert made[0][1] is made[1][1] is not threading.main_thread()


def test_a_call_from_another_thread_is_made_there_and_errors_come_back_as_raised() -> None:
    seen: list[threading.Thread] = []

    def from_a_worker() -> None:
        seen.append(in_go(threading.current_thread))

    worker = threading.Thread(target=from_a_worker)
    worker.start()
    worker.join()
    assert seen == [worker]
    with pytest.raises(ZeroDivisionError):
        in_go(lambda: 1 // 0)


def test_ctrl_c_reaches_the_main_thread_while_a_call_runs_and_the_next_call_gets_a_thread_of_its_own() -> None:
    main = threading.get_ident()
    threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()
    started = time.monotonic()
    busy: list[threading.Thread] = []
    with pytest.raises(KeyboardInterrupt):
        in_go(lambda: (busy.append(threading.current_thread()), time.sleep(3)))
    assert time.monotonic() - started < 2  # not when the call ends
    assert in_go(threading.current_thread) not in (busy[0], threading.main_thread())


def test_ctrl_c_taken_by_the_calling_thread_still_reaches_the_main_thread() -> None:
    # Linux gives a signal sent to the process to any thread that does not block it; Python runs its
    # handler in the main thread, which a wait without a timeout never woke for (1 in 4 under load)
    caller = in_go(threading.get_ident)
    threading.Timer(0.2, signal.pthread_kill, (caller, signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        in_go(time.sleep, 3)
    assert time.monotonic() - started < 1


def long_search(directory: Path) -> str:
    """A history whose search runs for minutes: one key, 40 clients, timeouts (info: open for ever)."""
    path = generate(Shape(5_000, seed=3, keys=1, processes=40, info_rate=0.02), str(directory / "history.jsonl"))
    os.remove(directory / "spec.json")
    return path


def interrupted(what: str, command: list[str], after: float = 1.5,
                sig: signal.Signals = signal.SIGINT) -> tuple[int, str, str]:
    """Run command (`what`), Ctrl-C it (or send `sig`) `after` seconds in (well into the search: the
    history is read in some 30 ms), and give its exit code and output; the test fails when it goes on
    for 5 s more."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO), "GOMAXPROCS": "1"})  # the suite's other CPU
    time.sleep(after)
    assert process.poll() is None, process.communicate()
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{what} went on searching after {sig.name}")
    return process.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_faultbed_check_in_the_middle_of_a_long_search(tmp_path: Path, sig: signal.Signals) -> None:
    path = long_search(tmp_path)  # a history file alone: queued in Go (FaultbedSubmit)
    assert interrupted("faultbed check", [sys.executable, "-m", "faultbed", "check", "--memory-limit", "4000",
                                          path], sig=sig) == (EXIT_INTERRUPTED, "", "faultbed: interrupted\n")


def test_ctrl_c_stops_faultbed_check_of_a_run_directory_in_the_middle_of_a_long_search(tmp_path: Path) -> None:
    long_search(tmp_path)
    (tmp_path / "spec.json").write_text('{"workload": "register"}')  # a run: checked in a thread of check's
    assert interrupted("faultbed check RUN", [sys.executable, "-m", "faultbed", "check", "--memory-limit", "4000",
                                             str(tmp_path)]) == (EXIT_INTERRUPTED, "", "faultbed: interrupted\n")


# `faultbed run` with its cluster's part replaced by writing that history: the check at its end
RUN_WRITING = """
import json, sys
import faultbed.runner as runner
def execute(plan, schedule, history, run_dir, run_id, progress):
    with open(sys.argv[1]) as lines:
        for line in lines:
            event = json.loads(line)
            del event["index"], event["time"]  # the writer's own, in the same order
            history.append(event)
runner._execute = execute
from faultbed.cli import main
sys.exit(main(["run", "--store", sys.argv[2], "--time-limit", "1", "--quiet"]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_during_a_runs_check_exits_130_and_names_the_history_kept(tmp_path: Path, sig: signal.Signals) -> None:
    path = long_search(tmp_path)
    code, out, err = interrupted("faultbed run's check", [sys.executable, "-c", RUN_WRITING, path,
                                                          str(tmp_path / "store")], after=3, sig=sig)
    run_dir = next((tmp_path / "store").glob("*/*/history.jsonl")).parent
    assert code == EXIT_INTERRUPTED and out == "", err
    assert err.splitlines()[-1] == f"faultbed: interrupted; everything stopped, history kept: faultbed check {run_dir}"
    assert (run_dir / "history.jsonl").read_bytes().count(b"\n") == Path(path).read_bytes().count(b"\n")
