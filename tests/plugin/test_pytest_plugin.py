"""The pytest plugin: markers make specs, run_test fails a test with a verdict a person can act on.

These tests run pytest inside pytest (pytester) with faultbed.runner.run replaced by a
fake that writes a real results directory, so they need no cluster; the example
suite and tests/e2e run the same fixtures against real clusters.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

FAKE_RUNNER = '''
import json, os
import pytest
from faultbed.checkers.result import Result
from faultbed import runner, store
from faultbed.errors import SetupError


@pytest.fixture(autouse=True)
def fake_run(monkeypatch):
    def fake(spec, schedule=None, progress=None):
        if "never-ready" in spec.bugs:
            raise SetupError("cluster not ready after 30s: no answer from n2")
        run_dir = store.create_run_dir(spec)
        store.write_json(run_dir, store.SPEC, spec.to_json())
        valid = "stale-reads" not in spec.bugs
        details = {} if valid else {"illegal_keys": ["k3"]}
        summary = "" if valid else 'illegal keys: ["k3"]'
        return runner.RunOutcome(spec, run_dir, valid, [Result("linearizable", valid, details, summary),
                                                        Result("stats", True, {"ok": 12})],
                                 {"ok": 12, "fail": 3, "info": 1})
    monkeypatch.setattr(runner, "run", fake)
'''

SPEC_DUMPER = '''
import json, os

def dump(spec, name):
    with open(os.path.join(os.environ["SPEC_OUT"], name + ".json"), "w") as fh:
        json.dump(spec.to_json(), fh)
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, tmp_path, monkeypatch):
    """A pytester dir with the fake runner; specs that tests dump land in SPEC_OUT."""
    out = tmp_path / "specs"
    out.mkdir()
    monkeypatch.setenv("SPEC_OUT", str(out))
    pytester.makeconftest(FAKE_RUNNER)
    pytester.makepyfile(spec_dumper=SPEC_DUMPER)
    pytester.syspathinsert()
    pytester.out = out  # type: ignore[attr-defined]
    return pytester


def dumped(pytester, name: str) -> dict:
    return json.loads((pytester.out / f"{name}.json").read_text())


def test_marker_fields_make_the_spec_and_the_closest_marker_wins(suite):
    suite.makepyfile(test_chaos='''
        import pytest
        from spec_dumper import dump
        pytestmark = pytest.mark.faultbed(system="raftkv", nodes=3, time_limit=5, rate=50)

        @pytest.mark.faultbed(nemesis="partition,kill", time_limit=7, bugs=["stale-reads"])
        def test_one(faultbed_spec):
            dump(faultbed_spec, "one")
    ''')
    suite.runpytest().assert_outcomes(passed=1)
    spec = dumped(suite, "one")
    assert (spec["system"], spec["nodes"], spec["rate"], spec["time_limit"]) == ("raftkv", 3, 50, 7)
    assert spec["nemesis"] == ["partition", "kill"] and spec["bugs"] == ["stale-reads"]


def test_an_unknown_marker_field_is_an_error_that_names_it(suite):
    suite.makepyfile(test_chaos='''
        import pytest

        @pytest.mark.faultbed(colour="red")
        def test_one(faultbed_spec):
            pass
    ''')
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    assert "@pytest.mark.faultbed: unknown field(s) ['colour'] (known: backend, bugs," in result.stdout.str()
    assert "def marker_fields" not in result.stdout.str()


def test_parametrizing_faultbed_nodes_and_system_overrides_the_marker(suite):
    suite.makepyfile(test_chaos='''
        import pytest
        from spec_dumper import dump

        @pytest.mark.faultbed(nodes=7)
        @pytest.mark.parametrize("faultbed_nodes", [3, 5])
        @pytest.mark.parametrize("faultbed_system", ["raftkv", "broker"])
        def test_sizes(faultbed_spec, faultbed_nodes, faultbed_system):
            dump(faultbed_spec, f"{faultbed_system}-{faultbed_nodes}")
    ''')
    suite.runpytest().assert_outcomes(passed=4)
    assert {(dumped(suite, f"{s}-{n}")["system"], dumped(suite, f"{s}-{n}")["nodes"])
            for s in ("raftkv", "broker") for n in (3, 5)} == {("raftkv", 3), ("raftkv", 5), ("broker", 3),
                                                              ("broker", 5)}


def test_command_line_options_override_seed_time_limit_backend_and_plant_bugs(suite):
    suite.makepyfile(test_chaos='''
        import pytest
        from spec_dumper import dump

        @pytest.mark.faultbed(seed=1, time_limit=30, bugs=["no-dedupe"])
        def test_one(faultbed_spec):
            dump(faultbed_spec, "one")
    ''')
    suite.runpytest("--faultbed-seed", "99", "--faultbed-time-limit", "2.5", "--faultbed-backend", "docker",
                    "--faultbed-bug", "stale-reads").assert_outcomes(passed=1)
    spec = dumped(suite, "one")
    assert (spec["seed"], spec["time_limit"], spec["backend"]) == (99, 2.5, "docker")
    assert spec["bugs"] == ["no-dedupe", "stale-reads"]


def test_a_failing_check_fails_the_test_with_verdict_results_and_replay_command(suite):
    suite.makepyfile(test_chaos='''
        import pytest

        @pytest.mark.faultbed(nemesis=["partition"], bugs=["stale-reads"], seed=5)
        def test_register(run_test):
            run_test()
    ''')
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "faultbed: raftkv register, nemesis partition, seed 5: verdict INVALID (expected valid)",
        '  linearizable: INVALID (illegal keys: ["k3"])',
        "  stats: valid",
        "  ops: 12 ok, 3 fail, 1 info",
        "results: */raftkv-register/*",
        "report:  */report.html",
        "replay:  faultbed replay */raftkv-register/*",
    ])
    assert "def run_one" not in result.stdout.str()  # the summary, not the plugin's traceback


def test_expect_false_asserts_that_a_planted_bug_is_caught(suite):
    suite.makepyfile(test_chaos='''
        def test_caught(run_test):
            outcome = run_test(bugs=("stale-reads",), expect=False)
            assert outcome.valid is False

        def test_not_caught_is_a_failure(run_test):
            run_test(expect=False)
    ''')
    result = suite.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*verdict valid (expected INVALID)*"])


def test_a_setup_error_fails_the_test_in_one_line(suite):
    suite.makepyfile(test_chaos='''
        def test_one(run_test):
            run_test(bugs=("never-ready",))
    ''')
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["faultbed: cluster not ready after 30s: no answer from n2"])
    assert "Traceback" not in result.stdout.str()


def test_runs_go_to_faultbed_store_when_given_and_are_listed_at_the_end(suite, tmp_path):
    suite.makepyfile(test_chaos='''
        def test_a(run_test):
            run_test()

        def test_b(run_test):
            run_test(bugs=("stale-reads",), expect=None)
    ''')
    store_dir = tmp_path / "results"
    result = suite.runpytest("--faultbed-store", str(store_dir))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= faultbed runs =*",
                                 f"   valid  test_chaos.py::test_a  {store_dir}/raftkv-register/*",
                                 f" INVALID  test_chaos.py::test_b  {store_dir}/raftkv-register/*",
                                 f"browse: faultbed serve --store {store_dir}"])
    assert len(list((store_dir / "raftkv-register").iterdir())) == 2


def test_by_default_runs_go_under_pytests_tmp_dir(suite):
    suite.makepyfile(test_chaos='''
        def test_a(run_test, tmp_path_factory):
            outcome = run_test()
            assert outcome.run_dir.startswith(str(tmp_path_factory.getbasetemp()))
    ''')
    suite.runpytest().assert_outcomes(passed=1)


def test_a_run_test_failure_is_recorded_in_pytests_own_junit_xml(suite, tmp_path):
    suite.makepyfile(test_chaos='''
        def test_a(run_test):
            run_test(bugs=("stale-reads",))
    ''')
    xml = tmp_path / "pytest.xml"
    suite.runpytest(f"--junitxml={xml}").assert_outcomes(failed=1)
    text = xml.read_text()
    assert re.search(r'<property name="faultbed_run_dir" value="[^"]+/raftkv-register/', text)
    assert '<property name="faultbed_verdict" value="INVALID"' in text
    assert "replay:  faultbed replay" in text


def test_parallel_workers_get_their_own_stores_and_distinct_run_dirs(suite):
    suite.makepyfile(test_chaos='''
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_run(run_test, n):
            run_test(seed=n)
    ''')
    result = suite.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    run_dirs = re.findall(r"valid  test_chaos.py::test_run\[\d\]  (\S+)", result.stdout.str())
    assert len(run_dirs) == 4 and len(set(run_dirs)) == 4
    assert {re.findall(r"popen-(gw\d)", d)[-1] for d in run_dirs} == {"gw0", "gw1"}


def test_a_plain_test_suite_sees_no_trace_of_the_plugin(pytester):
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    lines = [line for line in result.stdout.lines if not line.startswith("plugins:")]
    assert not any("faultbed" in line for line in lines)


def test_importing_the_plugin_imports_nothing_heavy():
    code = ("import sys, faultbed.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('faultbed', 'cluster', 'nemesis', 'checkers', 'matplotlib', 'rich', 'requests', 'docker')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['faultbed', 'faultbed.pytest_plugin']"
