"""A campaign's hung run is stopped the way Ctrl-C stops a run (SIGTERM: everything it started is
stopped), recorded as `hung`, and the campaign goes on."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from faultbed.campaign import run_once
from tests.integration.conftest import processes_with

pytestmark = pytest.mark.integration

TINY = str(Path(__file__).parents[1] / "maelstrom" / "tiny_node.py")


def test_a_run_past_its_deadline_gets_sigterm_stops_its_nodes_and_is_hung(tmp_path):
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    # a program that never answers init keeps the run in setup for 20 s: past a 1 + 2 s deadline
    result = run_once(["--bin", TINY, "--bin-arg=--misbehave", "--bin-arg=silent", f"--bin-arg={marker}",
                       "--workload", "echo", "--nodes", "2", "--time-limit", "1", "--nemesis", "none"],
                      7, str(tmp_path), hang_after=2)
    assert result.verdict == "hung", result
    assert "stopped by SIGTERM" in result.error_line, result
    assert result.elapsed < 20, "the run was stopped, not waited for"
    assert processes_with(marker) == [], "the hung run's programs were stopped"
