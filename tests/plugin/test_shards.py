"""Sharded campaigns: shard i of n is deterministic, and the n shards together run everything exactly once."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bench import campaign
from tests.plugin.test_pytest_plugin import FAKE_RUNNER
from faultbed.errors import FaultbedError
from faultbed.shard import Shard, parse_shard

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("items", [0, 1, 7, 23])
def test_the_shards_of_a_campaign_take_every_item_exactly_once(count, items):
    taken = [x for index in range(1, count + 1) for x in Shard(index, count).pick(range(items))]
    assert sorted(taken) == list(range(items)), f"shards of {count} over {items} items took {taken}"
    sizes = [len(Shard(index, count).pick(range(items))) for index in range(1, count + 1)]
    assert max(sizes) - min(sizes) <= 1, f"unbalanced shards {sizes}"


def test_a_shard_is_parsed_from_i_slash_n():
    assert parse_shard("2/3") == Shard(2, 3)
    assert parse_shard(" 1 / 1 ") == Shard(1, 1)


@pytest.mark.parametrize("text, says", [("3", "expected I/N"), ("0/3", "must be 1-3"), ("4/3", "must be 1-3"),
                                        ("1/0", "1-10000"), ("a/b", "expected I/N"), ("1/3/5", "expected I/N"),
                                        ("-1/3", "expected I/N"), ("1/99999", "1-10000")])
def test_a_bad_shard_is_one_clear_error(text, says):
    with pytest.raises(FaultbedError, match=re.escape(says)):
        parse_shard(text)


SUITE = '''
import pytest

@pytest.mark.parametrize("n", range(7))
def test_param(n):
    pass

def test_alpha():
    pass

class TestGroup:
    def test_one(self):
        pass

    def test_two(self):
        pass
'''


def passed_ids(result: pytest.RunResult) -> list[str]:
    return re.findall(r"^(\S+::\S+) PASSED", result.stdout.str(), flags=re.M)


def test_pytest_shards_run_the_whole_suite_once_between_them_and_the_same_way_every_time(pytester):
    pytester.makepyfile(test_suite=SUITE, test_other="def test_x():\n    pass\ndef test_y():\n    pass\n")
    whole = pytester.runpytest("-v")
    whole.assert_outcomes(passed=12)
    everything = passed_ids(whole)
    shards = []
    for index in (1, 2, 3):
        result = pytester.runpytest("-v", f"--faultbed-shard={index}/3")
        result.stdout.fnmatch_lines([f"faultbed: shard {index}/3 of the collected tests"])
        result.assert_outcomes(passed=4)
        assert "8 deselected" in result.stdout.str()
        shards.append(passed_ids(result))
    ran = [test for shard in shards for test in shard]
    assert sorted(ran) == sorted(everything), f"shards ran {ran}, the suite is {everything}"
    again = passed_ids(pytester.runpytest("-v", "--faultbed-shard=2/3"))
    assert again == shards[1]


def test_pytest_shards_split_the_tests_left_after_k_and_m(pytester):
    pytester.makepyfile(test_suite=SUITE)
    ran = []
    for index in (1, 2):  # a shard of all 10 sorted ids would give both chosen to shard 1
        result = pytester.runpytest("-v", "-k", "test_param and (3 or 5)", f"--faultbed-shard={index}/2")
        result.assert_outcomes(passed=1)
        ran += passed_ids(result)
    assert sorted(ran) == ["test_suite.py::test_param[3]", "test_suite.py::test_param[5]"], ran


def test_pytest_shards_spread_over_xdist_workers_still_run_each_test_once(pytester):
    pytester.makepyfile(test_suite=SUITE)
    ran = []
    for index in (1, 2):
        result = pytester.runpytest_subprocess("-n", "2", "-v", f"--faultbed-shard={index}/2")
        result.assert_outcomes(passed=5)
        ran += re.findall(r"PASSED (\S+::\S+)", result.stdout.str())
    assert len(ran) == 10 and len(set(ran)) == 10, ran


def test_a_sharded_run_says_how_to_gather_every_shards_runs(pytester, tmp_path):
    pytester.makeconftest(FAKE_RUNNER)
    pytester.makepyfile(test_chaos="def test_a(run_test):\n    run_test()\ndef test_b(run_test):\n    run_test()\n")
    result = pytester.runpytest("--faultbed-shard=2/2", "--faultbed-store", str(tmp_path / "s"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["   valid  test_chaos.py::test_b  *", f"browse: faultbed serve --store {tmp_path / 's'}",
                                 "shard 2/2: gather every shard's runs with `faultbed store merge --into DIR STORE...`*"])


def test_a_bad_pytest_shard_is_a_usage_error_in_one_line(pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("--faultbed-shard=4/3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--faultbed-shard: shard 4/3: the shard must be 1-3" in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_campaign_shards_take_their_seeds_and_together_every_seed_once(monkeypatch, tmp_path, capsys):
    seen: list[int] = []

    def record(args, seed, store, hang_after=None):  # the seed selection alone: each real run is a whole `faultbed run`
        seen.append(seed)
        return campaign.RunResult(seed, "valid", None, str(tmp_path), 0.0, 0, 0, "")

    monkeypatch.setattr(campaign, "run_once", record)
    per_shard = []
    for index in (1, 2, 3):
        before = len(seen)
        assert campaign.main(["--runs", "10", "--seed-base", "500", "--shard", f"{index}/3",
                              "--store", str(tmp_path), "--", "--time-limit", "1"]) == 0
        per_shard.append(seen[before:])
    assert per_shard == [[500, 503, 506, 509], [501, 504, 507], [502, 505, 508]]
    assert "shard 2/3: 3 of them" in capsys.readouterr().out


def test_campaign_refuses_a_bad_shard_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "bench.campaign", "--shard", "0/2", "--runs", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--shard: shard 0/2: the shard must be 1-2" in proc.stderr
    assert "Traceback" not in proc.stderr
