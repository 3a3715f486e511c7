"""JUnit XML of a run: a testcase per checker, invalid a failure, unknown an error, readable by CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from faultbed.checkers.result import Result
from faultbed.junit import write_junit, write_junit_error
from faultbed.runner import RunOutcome
from faultbed.spec import TestSpec

SPEC = TestSpec(system="raftkv", workload="register", nodes=3, nemesis=("partition", "kill"), seed=42)


def outcome(*results: Result, run_dir: str = "/store/raftkv-register/20250101T000000Z") -> RunOutcome:
    from faultbed.checkers.result import merge_valid

    return RunOutcome(SPEC, run_dir, merge_valid(r.valid for r in results), list(results),
                      {"ok": 10, "fail": 2, "info": 1})


def parse(path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root


def test_a_valid_run_is_a_passing_suite_with_one_case_per_checker(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(outcome(Result("linearizable", True), Result("stats", True, {"ok": 10})), str(path))
    suite = parse(path).find("testsuite")
    assert suite.get("name") == "faultbed.raftkv.register"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["linearizable", "stats"]
    assert all(len(list(c)) == 0 for c in cases)


def test_an_anomaly_is_a_failure_that_names_the_details_results_and_replay(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(outcome(Result("linearizable", False, {"illegal_keys": ["k3"]}, 'illegal keys: ["k3"]'),
                        Result("stats", True)), str(path))
    root = parse(path)
    assert root.get("failures") == "1"
    failure = root.find("testsuite/testcase[@name='linearizable']/failure")
    assert failure is not None and failure.get("type") == "invalid"
    assert failure.get("message") == 'linearizable: anomaly found (illegal keys: ["k3"])'
    assert "replay: faultbed replay /store/raftkv-register/20250101T000000Z" in failure.text
    assert root.find("testsuite/testcase[@name='stats']/failure") is None


def test_an_inconclusive_checker_is_an_error_not_a_failure(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(outcome(Result("linearizable", "unknown", {"error": "timed out after 120 s"}, "timed out")), str(path))
    suite = parse(path).find("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("0", "1")
    error = suite.find("testcase/error")
    assert error.get("type") == "unknown" and "timed out" in error.get("message")


def test_properties_come_first_and_carry_seed_nemesis_and_replay(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(outcome(Result("stats", True)), str(path))
    suite = parse(path).find("testsuite")
    assert suite[0].tag == "properties"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["seed"] == "42" and props["nemesis"] == "partition,kill"
    assert props["replay"] == "faultbed replay /store/raftkv-register/20250101T000000Z"


def test_the_suite_time_is_the_history_length(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "history.jsonl").write_text('{"type": "invoke", "process": 0, "f": "read", "time": 1}\n'
                                           '{"type": "ok", "process": 0, "f": "read", "time": 6500000000}\n')
    path = tmp_path / "junit.xml"
    write_junit(outcome(Result("stats", True), run_dir=str(run_dir)), str(path))
    assert parse(path).find("testsuite").get("time") == "6.500"


def test_control_characters_in_details_still_make_well_formed_xml(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(outcome(Result("queue", False, {"lost": ["msg\x00\x1b[31m"], "error": "bad\x07 byte"},
                               "lost msg\x00\x1b[31m; bad\x07 byte")), str(path))
    failure = parse(path).find("testsuite/testcase/failure")
    assert failure.get("message") == "queue: anomaly found (lost msg\ufffd\ufffd[31m; bad\ufffd byte)"
    write_junit_error(SPEC, "n1 exited during startup; its log ends: \x1b[31mTraceback\x00", str(path))
    error = parse(path).find("testsuite/testcase/error")
    assert error.get("message") == "n1 exited during startup; its log ends: \ufffd[31mTraceback\ufffd"


def test_a_run_that_never_started_is_one_error_case(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit_error(SPEC, "cluster not ready after 30s: no answer from n2", str(path))
    suite = parse(path).find("testsuite")
    assert (suite.get("tests"), suite.get("errors")) == ("1", "1")
    assert suite.find("testcase[@name='run']/error").get("message").startswith("cluster not ready")


@pytest.mark.parametrize("verdict, failures, errors", [(True, "0", "0"), (False, "1", "0"), ("unknown", "0", "1")])
def test_top_level_counts_match_the_suite(tmp_path, verdict, failures, errors):
    path = tmp_path / "junit.xml"
    write_junit(outcome(Result("linearizable", verdict)), str(path))
    root = parse(path)
    assert (root.get("failures"), root.get("errors")) == (failures, errors)
