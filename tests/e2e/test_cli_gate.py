"""`faultbed run` as a CI gate: exit codes of ARCHITECTURE.md, JUnit XML, report.html in every run."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from tests.e2e.conftest import SHORT_RUN, STALE_READS, faultbed, short_run

pytestmark = pytest.mark.integration


def junit_suite(path: str) -> ET.Element:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return suite


def test_a_valid_run_exits_0_and_writes_passing_junit_and_a_report(tmp_path):
    (tmp_path / "out").mkdir()  # --junit never creates directories
    junit = str(tmp_path / "out" / "verdict.xml")
    run_dir = short_run(str(tmp_path / "store"), "--nemesis", "partition", "--junit", junit, expect_exit=0)
    suite = junit_suite(junit)
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
    assert [case.get("name") for case in suite.findall("testcase")] == ["linearizable", "raft-invariants", "stats"]
    assert float(suite.get("time")) > 3
    with open(os.path.join(run_dir, "report.html"), encoding="utf-8") as fh:
        page = fh.read()
    assert 'data-valid="valid"' in page and page.count("data:image/png;base64,") == 2


def test_an_anomaly_exits_1_and_is_a_junit_failure_with_the_replay_command(tmp_path):
    junit = str(tmp_path / "verdict.xml")
    run_dir = short_run(str(tmp_path / "store"), *STALE_READS, "--junit", junit, expect_exit=1)
    failure = junit_suite(junit).find("testcase[@name='linearizable']/failure")
    assert failure is not None and failure.get("message").startswith("linearizable: anomaly found (illegal keys: [")
    assert f"replay: faultbed replay {run_dir}" in failure.text
    assert os.path.exists(os.path.join(run_dir, "linearizability.html"))
    with open(os.path.join(run_dir, "report.html"), encoding="utf-8") as fh:
        assert 'id="porcupine-link" href="linearizability.html"' in fh.read()


def test_an_inconclusive_run_exits_2_and_is_a_junit_error(tmp_path):
    junit = str(tmp_path / "verdict.xml")
    # every operation times out at once: nothing succeeds, so the run proves nothing
    run_dir = short_run(str(tmp_path / "store"), "--nemesis", "none", "--time-limit", "2", "--op-timeout", "0.00001",
                        "--junit", junit, expect_exit=2)
    suite = junit_suite(junit)
    # nothing completed: neither the linearizability check nor the stats can conclude anything
    assert (suite.get("failures"), suite.get("errors")) == ("0", "2")
    assert suite.find("testcase[@name='stats']/error").get("type") == "unknown"
    assert suite.find("testcase[@name='linearizable']/error").get("type") == "unknown"
    with open(os.path.join(run_dir, "report.html"), encoding="utf-8") as fh:
        assert 'data-valid="unknown"' in fh.read()


def test_bad_input_exits_3_in_one_line(tmp_path):
    done = faultbed("run", *SHORT_RUN, "--store", str(tmp_path), "--system", "nosuch", "--junit",
                    str(tmp_path / "verdict.xml"))
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1].startswith("faultbed: unknown system 'nosuch'")
    assert "Traceback" not in done.stderr
