"""--junit that cannot be written after the verdict (issue 17): exit 3, one line, the verdict kept."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, faultbed_command, processes_of_run, wait_for

pytestmark = pytest.mark.integration


def test_an_unwritable_junit_report_is_exit_3_and_the_verdict_is_kept(tmp_path: Path) -> None:
    store, reports = tmp_path / "store", tmp_path / "reports"
    reports.mkdir()
    command = faultbed_command("run", "--nodes", "3", "--nemesis", "none", "--time-limit", "3", "--rate", "30",
                               "--concurrency", "2", "--seed", "5", "--quiet", "--store", str(store),
                               "--junit", str(reports / "verdict.xml"))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        # the directory existed when the run began (checked then), and is gone when the verdict is written
        wait_for(lambda: (store / "latest" / "history.jsonl").exists(), 60, "the run's history")
        shutil.rmtree(reports)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    run_dir = (store / "latest").resolve()
    assert proc.returncode == 3, out + err
    assert "verdict: valid" in out
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"faultbed: cannot write the JUnit report {reports / 'verdict.xml'}")
    assert f"the verdict (valid) is kept in {run_dir}" in last
    assert json.loads((run_dir / "results.json").read_text())["valid"] is True
    run_id = json.loads((run_dir / "results.json").read_text())["run_id"]
    assert processes_of_run(run_id) == []
