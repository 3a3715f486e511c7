"""The example GitHub Actions workflow: well formed, and its `run:` steps pass here, in order, as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.e2e.conftest import ROOT

import yaml  # python3-yaml, installed by scripts/setup: missing fails, never skips

WORKFLOW = ROOT / "examples" / "github-actions" / "chaos.yml"
RUN_LOCALLY = ROOT / "examples" / "github-actions" / "run_locally.py"


def steps() -> list[dict]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return workflow["jobs"]["chaos"]["steps"]


def test_workflow_run_steps_need_no_github_expressions_and_name_files_that_exist():
    run_steps = [s for s in steps() if "run" in s]
    assert len(run_steps) >= 3
    for step in run_steps:
        assert "${{" not in step["run"], step["name"]
    scripts = " ".join(s["run"] for s in run_steps)
    assert "make setup" in scripts and "examples/chaos_suite" in scripts and "--junit" in scripts
    assert (ROOT / "examples" / "chaos_suite").is_dir()
    uploads = [s for s in steps() if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0].get("if") == "always()"


@pytest.mark.integration
@pytest.mark.slow
def test_workflow_run_steps_pass_here_in_order_and_leave_junit_and_reports(tmp_path):
    out = tmp_path / "chaos-out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    done = subprocess.run([sys.executable, str(RUN_LOCALLY), str(WORKFLOW), "--env", f"CHAOS_OUT={out}"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    ran = re.findall(r"^step (\d+): .*: (passed|failed|skipped)", done.stdout, re.M)
    expected = [(str(i), "passed" if "run" in s else "skipped") for i, s in enumerate(steps(), start=1)]
    assert ran == expected
    suite_xml = ET.parse(out / "chaos-suite.xml").getroot()
    assert suite_xml.find("testsuite").get("failures") == "0"
    assert ET.parse(out / "faultbed-run.xml").getroot().get("failures") == "0"
    reports = list(out.glob("*/*/*/report.html"))
    assert len(reports) >= 6  # five suite tests and one run


TINY_WORKFLOW = """
name: tiny
env:
  GREETING: hello
jobs:
  one:
    runs-on: ubuntu-latest
    env:
      OUT: unset
    steps:
      - uses: actions/checkout@v4
      - name: first
        run: echo "$GREETING" > "$OUT/first"
      - name: breaks
        run: exit 4
      - name: not after a failure
        run: touch "$OUT/skipped-step-ran"
      - name: always
        if: always()
        run: touch "$OUT/always-ran"
      - name: on failure
        if: failure()
        run: touch "$OUT/failure-ran"
"""


def run_tiny(tmp_path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "tiny.yml"
    path.write_text(text)
    return subprocess.run([sys.executable, str(RUN_LOCALLY), str(path), "--env", f"OUT={tmp_path}"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_local_runner_stops_at_a_failing_step_but_runs_always_and_failure_steps(tmp_path):
    done = run_tiny(tmp_path, TINY_WORKFLOW)
    assert done.returncode == 1
    assert (tmp_path / "first").read_text() == "hello\n"
    assert not (tmp_path / "skipped-step-ran").exists()
    assert (tmp_path / "always-ran").exists() and (tmp_path / "failure-ran").exists()
    assert "step 3: breaks: failed (exit 4" in done.stdout and "workflow: FAILED" in done.stdout


def test_local_runner_refuses_steps_it_cannot_run_as_written(tmp_path):
    done = run_tiny(tmp_path, TINY_WORKFLOW.replace('echo "$GREETING"', "echo ${{ env.GREETING }}"))
    assert done.returncode == 1
    assert "cannot run as written" in done.stdout
