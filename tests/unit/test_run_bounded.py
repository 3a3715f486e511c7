"""The tests' budget for a faultbed subprocess ends it as Ctrl-C would, so that its teardown runs."""

from __future__ import annotations

import sys

import pytest

from tests.integration.conftest import run_bounded

CHILD = """
import signal, sys, time
def stop(signum, frame):
    open(sys.argv[1], "w").write("torn down")
    sys.exit(3)
signal.signal(signal.SIGTERM, stop)
print("started", flush=True)
time.sleep(60)
"""


def test_a_process_past_its_budget_gets_sigterm_and_the_test_fails_with_its_output(tmp_path):
    marker = tmp_path / "teardown"
    with pytest.raises(pytest.fail.Exception) as failed:
        run_bounded([sys.executable, "-c", CHILD, str(marker)], 1.0)
    assert marker.read_text() == "torn down"  # its own handler ran: SIGTERM, not SIGKILL
    assert "past its budget of 1 s" in str(failed.value) and "stopped by SIGTERM (exit 3)" in str(failed.value)
    assert "started" in str(failed.value)


def test_a_process_within_its_budget_is_returned_as_subprocess_run_would():
    done = run_bounded([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(2)"],
                       30.0)
    assert (done.returncode, done.stdout, done.stderr) == (2, "out\n", "err\n")
