"""Rolling restart, the `*-primary` targets and heal_all's fallbacks on a real 3-node raftkv cluster.

tests/nemesis/test_schedule.py checks the same against a recording fake; here the
processes, the Raft leader, and the Toxiproxy server are real, so "the leader was
killed", "every node was restarted" and "heal brought it back" are observed, not assumed.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Iterator

import pytest

from faultbed import store
from faultbed.cluster.backend import DEAD, PAUSED, RUNNING
from faultbed.history import HistoryWriter, read_history
from faultbed.nemesis.executor import ScheduleExecutor
from faultbed.nemesis.schedule import FaultEvent, Schedule
from faultbed.pytest_plugin import running_cluster
from faultbed.spec import TestSpec
from tests.conftest import wait_until_stopped
from tests.nemesis.echo_cluster import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("nemesis-real-cluster")]  # one cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    spec = TestSpec(system="raftkv", nodes=3, store=str(tmp_path_factory.mktemp("store")), seed=1)
    with running_cluster(spec, store.create_run_dir(spec)) as running:
        yield running


@pytest.fixture
def history(tmp_path: Any) -> Iterator[HistoryWriter]:
    with HistoryWriter(os.path.join(tmp_path, "history.jsonl")) as writer:
        writer.start_clock()
        yield writer


def schedule_of(events: list[FaultEvent], nodes: list[str]) -> Schedule:
    faults = tuple(dict.fromkeys(e.fault for e in events))
    return Schedule.from_json(Schedule(0, tuple(nodes), "blackhole", 1.0, 10.0, faults, tuple(events)).to_json())


def nemesis_events(history: HistoryWriter) -> list[dict[str, Any]]:
    return [e for e in read_history(history.path) if e["process"] == "nemesis"]


def pids(cluster: Any) -> dict[str, int | None]:
    return {n: cluster.backend.pid(n) for n in cluster.nodes}


def test_rolling_restart_restarts_every_node_in_order_and_each_rejoins(cluster: Any, history: HistoryWriter) -> None:
    before = pids(cluster)
    order = list(reversed(cluster.nodes))
    schedule = schedule_of([FaultEvent(0.0, "start", "rolling-restart", "r#1", {"order": order}),
                            FaultEvent(0.1, "stop", "rolling-restart", "r#1")], cluster.nodes)
    with ScheduleExecutor(schedule, cluster, history, ready_timeout=30) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 120, "the rolling restart")
        leader = nemesis.heal_all(ready_timeout=30)
    after = pids(cluster)
    assert all(after[n] is not None and after[n] != before[n] for n in cluster.nodes), (before, after)
    events = nemesis_events(history)
    assert [e["nodes"] for e in events if e["f"] == "restart"] == [[n] for n in order]
    stop = next(e for e in events if e["f"] == "stop-rolling-restart")
    assert stop["value"] == f"rolling restart over: restarted {','.join(order)}", "every node rejoined in time"
    assert leader in cluster.nodes and events[-1]["f"] == "heal" and events[-1]["ready"] is True


@pytest.mark.parametrize("kind, state", [("kill-primary", DEAD), ("pause-primary", PAUSED)])
def test_primary_targets_hit_the_current_raft_leader_and_are_undone(cluster: Any, history: HistoryWriter,
                                                                    kind: str, state: str) -> None:
    cluster.wait_ready(30)
    leader = cluster.leader()
    fallback = next(n for n in cluster.nodes if n != leader)  # would be hit if the leader were not looked up
    schedule = schedule_of([FaultEvent(0.0, "start", kind, "f#1", {"target": "primary", "fallback": fallback})],
                           cluster.nodes)
    with ScheduleExecutor(schedule, cluster, history, ready_timeout=30) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 30, f"{kind} to start")
        assert cluster.backend.state(leader) == state
        assert all(cluster.backend.state(n) == RUNNING for n in cluster.nodes if n != leader)
        nemesis.heal_all(ready_timeout=30)
    start = nemesis_events(history)[0]
    assert start["nodes"] == [leader] and start["leader"] == leader
    assert all(cluster.backend.state(n) == RUNNING for n in cluster.nodes)


def test_heal_all_falls_back_on_everything_left_broken(cluster: Any, history: HistoryWriter) -> None:
    """Faults still active at heal, a node killed and one paused behind the nemesis' back, and a Toxiproxy
    server that stopped answering (SIGSTOP): heal_all brings the cluster back to one leader anyway."""
    cluster.wait_ready(30)
    n1, n2, n3 = cluster.nodes
    grudge = {n1: [n2, n3], n2: [n1], n3: [n1]}
    topology = {"name": "custom", "grudge": grudge, "description": f"custom: {n1} isolated"}
    schedule = schedule_of([FaultEvent(0.0, "start", "partition", "p#1", {"topology": topology}),
                            FaultEvent(0.0, "start", "kill:one", "k#1", {"target": "one", "nodes": [n2]})],
                           cluster.nodes)
    with ScheduleExecutor(schedule, cluster, history, ready_timeout=30) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 30, "both faults to start")
        cluster.backend.pause(n3)  # behind the nemesis' back: no fault of the schedule paused it
        toxiproxy = cluster.backend.toxiproxy_pid
        os.kill(toxiproxy, signal.SIGSTOP)
        wait_until_stopped(toxiproxy)  # else a thread not yet stopped may still answer the heal's first call
        leader = nemesis.heal_all(ready_timeout=30)
    heal = nemesis_events(history)[-1]
    assert heal["f"] == "heal" and heal["ready"] is True and leader in cluster.nodes, heal
    assert "error" not in heal, heal
    assert n3 in heal["resumed"]
    assert all(cluster.backend.state(n) == RUNNING for n in cluster.nodes)
    assert any(e["f"] == "toxiproxy-restarted" for e in nemesis_events(history))
    assert cluster.backend.toxiproxy_pid != toxiproxy
    assert cluster.mesh.is_healed()
