"""The schedule-shrinking search on its own: which candidates it keeps, how it repeats, when it stops.

The runner here is a rule over the candidate's schedule (what a system's failure depends
on), not a cluster: these tests pin the search; tests/integration/test_shrink_run.py shrinks
a real failing raftkv run.
"""

from __future__ import annotations

import itertools

import pytest

from faultbed.nemesis.schedule import Schedule, generate_schedule
from faultbed.shrink import Candidate, Policy, Shrinker, Trial, ddmin, faults_of
from faultbed.spec import TestSpec

SPEC = TestSpec(nemesis=("partition", "kill"), nemesis_interval=3.0, time_limit=30.0, seed=7)
NODES = ("n1", "n2", "n3", "n4", "n5")


def schedule() -> Schedule:
    return generate_schedule(SPEC, NODES)


def runner_failing_when(rule):  # type: ignore[no-untyped-def]
    calls: list[tuple[TestSpec, Schedule]] = []

    def run(spec: TestSpec, sched: Schedule) -> Trial:
        calls.append((spec, sched))
        return Trial(False if rule(spec, sched) else True, f"run-{len(calls)}")
    return run, calls


def test_ddmin_finds_the_one_pair_that_matters() -> None:
    items = faults_of(schedule())
    assert len(items) >= 10
    needed = {items[2].id, items[7].id}
    kept = ddmin(list(items), lambda faults: needed <= {f.id for f in faults})
    assert {f.id for f in kept} == needed


def test_shrinks_to_the_fault_that_matters_moved_early_and_short() -> None:
    sched = schedule()
    culprit = next(e.id for e in sched.events if e.fault == "kill" and e.action == "start")

    def rule(spec: TestSpec, s: Schedule) -> bool:
        return any(e.id == culprit for e in s.events) and spec.time_limit >= 2

    run, calls = runner_failing_when(rule)
    result = Shrinker(SPEC, sched, run, Policy(tries=1, needed=1, budget=1e9)).shrink()
    assert result.minimal is not None
    assert [f.id for f in result.minimal.faults] == [culprit]
    assert result.minimal.faults[0].start == 1.0
    assert result.minimal.time_limit <= 5
    spec, minimal = next(call for call in reversed(calls) if rule(*call))
    assert minimal.faults == ("kill",) and spec.nemesis == ("kill",)
    assert result.run_dir is not None and result.run_dir.startswith("run-")


def test_a_candidate_fails_only_with_needed_of_tries() -> None:
    """Nondeterminism: a candidate failing 1 run in 3 is not kept when 2 of 3 are needed."""
    sched = schedule()
    counter = itertools.count()
    # the full schedule fails on 2 of every 3 runs, anything smaller on 1 of every 3
    def rule(spec: TestSpec, s: Schedule) -> bool:
        n = next(counter)
        return n % 3 != 2 if len(s.events) == len(sched.events) and spec.time_limit == 30 else n % 3 == 0

    run, calls = runner_failing_when(rule)
    result = Shrinker(SPEC, sched, run, Policy(tries=3, needed=2, budget=1e9)).shrink()
    assert result.minimal is not None and result.minimal.time_limit == 30
    assert len(result.minimal.faults) == len(faults_of(sched))


def test_the_budget_ends_the_search_with_the_best_so_far() -> None:
    sched = schedule()
    now = [0.0]

    def run(spec: TestSpec, s: Schedule) -> Trial:
        now[0] += spec.time_limit + 5
        return Trial(False, "x")

    result = Shrinker(SPEC, sched, run, Policy(tries=1, needed=1, budget=40.0), clock=lambda: now[0]).shrink()
    assert result.budget_spent
    assert result.minimal is not None and result.runs <= 3


def test_never_reproducing_gives_no_minimal() -> None:
    run, calls = runner_failing_when(lambda spec, s: False)
    result = Shrinker(SPEC, schedule(), run, Policy(tries=3, needed=2, budget=1e9), anomaly=4.0).shrink()
    assert result.minimal is None and result.run_dir is None
    assert len(calls) == 4  # the cut run twice, the whole run twice: two passes out of three settle each


def test_cut_at_the_anomaly_keeps_only_earlier_faults() -> None:
    sched = schedule()
    run, calls = runner_failing_when(lambda spec, s: True)
    Shrinker(SPEC, sched, run, Policy(tries=1, needed=1, budget=1e9), anomaly=6.5).shrink()
    spec, first = calls[0]
    assert spec.time_limit == 9
    assert all(e.at <= 9 for e in first.events) and first.events


def test_policy_rejects_impossible_thresholds() -> None:
    with pytest.raises(ValueError):
        Policy(tries=2, needed=3)


def test_candidate_schedule_round_trips() -> None:
    sched = schedule()
    faults = faults_of(sched)[:3]
    again = Schedule.from_json(Candidate(faults, 12.0).schedule(sched).to_json())
    assert faults_of(again) == faults


def test_two_faults_far_apart_are_moved_together() -> None:
    """A failure that needs a partition and a later kill: both kept, the gap closed, the run short."""
    sched = schedule()
    faults = faults_of(sched)
    first = next(f for f in faults if f.entry == "partition")
    second = [f for f in faults if f.entry == "kill"][-2]
    assert second.start - first.stop > 10

    def rule(spec: TestSpec, s: Schedule) -> bool:
        ids = [e.id for e in s.events if e.action == "start"]
        return first.id in ids and second.id in ids and ids.index(first.id) < ids.index(second.id)

    run, calls = runner_failing_when(rule)
    result = Shrinker(SPEC, sched, run, Policy(tries=1, needed=1, budget=1e9)).shrink()
    assert result.minimal is not None
    assert [f.id for f in result.minimal.faults] == [first.id, second.id]
    kept = result.minimal.faults
    assert kept[1].start - kept[0].stop <= 1.0 + 1e-6
    assert result.minimal.time_limit <= 10


def test_halving_a_fault_never_moves_an_overlapping_one_before_it() -> None:
    sched = schedule()
    faults = faults_of(sched)
    first = next(f for f in faults if f.entry == "partition")
    overlapping = next(f for f in faults if f.entry == "kill" and first.start < f.start < first.stop)
    run, calls = runner_failing_when(lambda spec, s: {first.id, overlapping.id} <= {e.id for e in s.events})
    Shrinker(SPEC, sched, run, Policy(tries=1, needed=1, budget=1e9)).shrink()
    for _, tried in calls:
        starts = {e.id: e.at for e in tried.events if e.action == "start"}
        if first.id in starts and overlapping.id in starts:
            assert starts[first.id] <= starts[overlapping.id]


def test_confirmation_replaces_a_candidate_kept_by_luck_with_the_next_larger_reliable_one() -> None:
    """A bug seen in some runs only: the lone fault fails 2 runs in a row by chance and is kept,
    but fails rarely after; 10 confirming runs reject it for the two faults that always fail."""
    sched = schedule()
    faults = faults_of(sched)
    pair = {faults[0].id, faults[1].id}
    lucky = faults[0].id
    runs_of_lucky = itertools.count()

    def rule(spec: TestSpec, s: Schedule) -> bool:
        ids = {e.id for e in s.events}
        if pair <= ids:
            return True
        return ids == {lucky} and next(runs_of_lucky) < 2  # its first two runs only

    run, calls = runner_failing_when(rule)
    result = Shrinker(SPEC, sched, run, Policy(tries=2, needed=2, budget=1e9, confirm=10, confirm_needed=8)).shrink()
    assert [len(c.candidate.faults) for c in result.confirmations][:1] == [1]
    assert not result.confirmations[0].fails and len(result.confirmations[0].trials) == 10
    assert result.minimal is not None and {f.id for f in result.minimal.faults} == pair
    assert result.confirmations[-1].fails and sum(t.valid is False for t in result.confirmations[-1].trials) == 10
    assert result.run_dir is not None


def test_without_confirmation_the_search_answer_stands() -> None:
    sched = schedule()
    run, calls = runner_failing_when(lambda spec, s: True)
    result = Shrinker(SPEC, sched, run, Policy(tries=1, needed=1, budget=1e9)).shrink()
    assert result.confirmations == () and result.minimal is not None and result.minimal.faults == ()
