"""Schedules as data (seeded, round-tripping, timed as promised) and their execution.

Network faults run against a real Toxiproxy and real TCP echo nodes. The
executor also needs a backend for process faults and a leader: `RecordingBackend`
is a small fake that only records kill/pause/resume/restart calls and keeps
node states, and `EchoCluster.leader()` names a fixed node. Nothing else is
faked; the lead's integration tests run schedules against real clusters.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faultbed.cluster.backend import DEAD, PAUSED, RUNNING
from faultbed.cluster.mesh import Mesh
from faultbed.errors import FaultbedError, SetupError
from faultbed.history import HistoryWriter, read_history
from faultbed.run_files import read_schedule
from faultbed.spec import TestSpec
from faultbed.nemesis.executor import ScheduleExecutor
from faultbed.nemesis.faults import fault_help, split_nemesis
from faultbed.nemesis.schedule import (
    JITTER,
    MIN_FAULT_FRACTION,
    FaultEvent,
    Schedule,
    generate_schedule,
    validate_nemesis,
)
from faultbed.checkers.formats import nemesis_annotations
from faultbed.nemesis.network import PARTITION
from faultbed.nemesis.process import KILL
from faultbed.report import fault_intervals
from tests.nemesis.echo_cluster import EchoMesh, wait_until

HOST = "127.0.0.1"
NODES = ["n1", "n2", "n3", "n4", "n5"]



# -- schedules as data ----------------------------------------------------------------------

def test_same_seed_gives_identical_schedule_json_and_another_seed_another() -> None:
    spec = TestSpec(nemesis=("partition", "kill:minority", "latency"), seed=42, time_limit=60)
    first = generate_schedule(spec, NODES).dumps()
    assert generate_schedule(spec, NODES).dumps() == first
    assert generate_schedule(spec.replace(seed=43), NODES).dumps() != first


def test_schedule_round_trips_through_json_and_schedule_json(tmp_path: Any) -> None:
    spec = TestSpec(nemesis=("partition-ring", 'partition:{"n1": ["n2"]}', "pause-primary", "rolling-restart",
                             "slicer:n2+n3"), seed=7, time_limit=45)
    schedule = generate_schedule(spec, NODES)
    assert Schedule.from_json(json.loads(json.dumps(schedule.to_json()))) == schedule
    path = os.path.join(tmp_path, "schedule.json")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(schedule.dumps())
    assert read_schedule(str(tmp_path)) == schedule


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), interval=st.floats(0.5, 20), limit=st.floats(1, 120),
       count=st.integers(1, 4))
def test_starts_and_stops_alternate_every_interval_with_jitter_staggered_within_the_limit(
        seed: int, interval: float, limit: float, count: int) -> None:
    entries = ("partition", "kill", "latency", "pause:majority")[:count]
    spec = TestSpec(nemesis=entries, seed=seed, nemesis_interval=interval, time_limit=limit)
    schedule = generate_schedule(spec, NODES)
    assert [e.at for e in schedule.events] == sorted(e.at for e in schedule.events)
    low, high = interval * (1 - JITTER) - 0.002, interval * (1 + JITTER) + 0.002
    for position, entry in enumerate(entries):
        events = schedule.events_of(entry)
        assert [e.action for e in events] == ["start", "stop"] * (len(events) // 2)
        if not events:
            assert interval * (0.5 + position / count) > limit - interval * MIN_FAULT_FRACTION
            continue
        assert events[0].at == pytest.approx(interval * (0.5 + position / count), abs=0.001), "staggered"
        for start, stop in zip(events[::2], events[1::2]):
            assert start.id == stop.id and start.params and not stop.params
            assert start.at <= limit - interval * MIN_FAULT_FRACTION + 0.001
            assert stop.at <= limit
            assert low <= stop.at - start.at <= high or stop.at > limit - 0.001, \
                "a fault lasts about an interval (the last one may be cut at the time limit)"
        for stop, start in zip(events[1::2], events[2::2]):
            assert low <= start.at - stop.at <= high, "pause between faults lasts about an interval"


def test_adding_an_entry_does_not_change_the_choices_of_the_others() -> None:
    alone = generate_schedule(TestSpec(nemesis=("partition",), seed=5, time_limit=100), NODES)
    together = generate_schedule(TestSpec(nemesis=("kill", "partition"), seed=5, time_limit=100), NODES)
    grudges = [e.params for e in alone.events_of("partition") if e.action == "start"]
    assert grudges == [e.params for e in together.events_of("partition") if e.action == "start"]


def test_default_partition_alternates_random_halves_with_heal() -> None:
    schedule = generate_schedule(TestSpec(), NODES)  # --nemesis partition, 30 s, every 10 s
    starts = [e for e in schedule.events if e.action == "start"]
    assert len(starts) >= 2 and all(e.params["topology"]["name"] == "random-halves" for e in starts)
    assert schedule.partition_mode == "blackhole"


def test_none_means_no_faults() -> None:
    assert generate_schedule(TestSpec(nemesis=("none",)), NODES).events == ()
    assert generate_schedule(TestSpec(nemesis=()), NODES).events == ()


def test_nemesis_lists_split_at_commas_outside_json() -> None:
    text = 'partition:{"n1": ["n2", "n3"], "n2": ["n1"]}, kill:n1+n3,none, latency'
    assert split_nemesis(text) == ('partition:{"n1": ["n2", "n3"], "n2": ["n1"]}', "kill:n1+n3", "latency")
    validate_nemesis(TestSpec(nemesis=split_nemesis(text)))


def test_every_listed_fault_kind_is_accepted_and_scheduled() -> None:
    listed = [name for name in fault_help() if name != "none"]
    assert len(listed) >= 10, listed
    for name in listed:
        spec = TestSpec(nemesis=(name,), time_limit=20, nemesis_interval=4)
        validate_nemesis(spec)
        starts = [e for e in generate_schedule(spec, NODES).events if e.action == "start"]
        assert starts and {e.fault for e in starts} == {name}, f"{name} is accepted but never scheduled"


@pytest.mark.parametrize("changes, message", [
    ({"nemesis": ("partition", "earthquake")}, "unknown nemesis 'earthquake' \\(known: .*kill-primary, .*partition,"),
    ({"nemesis": ("kill", "kill")}, "listed twice: kill"),
    ({"nemesis": ("none", "kill")}, "`none` cannot be combined"),
    ({"partition_mode": "drop"}, "unknown partition mode 'drop'"),
    ({"nemesis": ("kill:most",)}, "unknown target 'most'"),
    ({"nemesis": ("kill:n9",)}, "unknown target 'n9'"),
    ({"nemesis": ("partition:star",)}, "unknown partition topology 'star'"),
    ({"nemesis": ('partition:{"n1": ["n7"]}',)}, "unknown node"),
    ({"nemesis": ("partition-bridge",), "nodes": 2}, "at least 3 nodes"),
    ({"nemesis": ("kill:minority",), "nodes": 2}, "kill:minority needs more nodes"),
    ({"nemesis": ("latency",), "options": {"toxic_attributes": {"latency": {"speed": 1}}}}, "speed"),
    ({"nemesis_interval": 0}, "nemesis-interval must be positive"),
])
def test_bad_nemesis_specs_are_refused_in_one_clear_line(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultbedError, match=message):
        validate_nemesis(TestSpec().replace(**changes))


def test_a_broken_schedule_file_is_refused(tmp_path: Any) -> None:
    path = os.path.join(tmp_path, "schedule.json")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"version": 1, "seed": 0}')
    with pytest.raises(FaultbedError, match="schedule.json: not a faultbed schedule"):
        read_schedule(str(tmp_path))
    with pytest.raises(FaultbedError, match="missing/schedule.json: cannot read"):
        read_schedule(os.path.join(tmp_path, "missing"))


# -- execution ------------------------------------------------------------------------------------

class RecordingBackend:
    """Fake backend: records process-fault calls and node states; starts no process."""

    name = "recording"

    def __init__(self, nodes: list[str], failing: set[str] | None = None) -> None:
        self.states = {n: RUNNING for n in nodes}
        self.calls: list[tuple[str, str]] = []
        self.failing = failing or set()

    def _act(self, verb: str, node: str, state: str) -> None:
        if node in self.failing:
            raise SetupError(f"{node} refuses to {verb}")
        self.calls.append((verb, node))
        self.states[node] = state

    def kill(self, node: str) -> None:
        self._act("kill", node, DEAD)

    def pause(self, node: str) -> None:
        self._act("pause", node, PAUSED)

    def resume(self, node: str) -> None:
        self._act("resume", node, RUNNING)

    def restart(self, node: str) -> None:
        self._act("restart", node, RUNNING)

    def state(self, node: str) -> str:
        return self.states[node]


class EchoCluster:
    """Echo nodes behind a real mesh, a recording backend, and a fixed leader."""

    def __init__(self, net: EchoMesh, backend: RecordingBackend, leader: str | None = "n2") -> None:
        self.nodes = list(net.nodes)
        self.mesh: Mesh = net.mesh
        self.backend: Any = backend
        self.fixed_leader = leader
        self.ready_waits = 0

    def leader(self, timeout: float = 1.0) -> str | None:
        return self.fixed_leader

    def wait_ready(self, timeout: float, nodes: list[str] | None = None) -> str:
        self.ready_waits += 1
        if self.fixed_leader is None or self.backend.state(self.fixed_leader) != RUNNING:
            raise SetupError("no leader")
        return self.fixed_leader


@pytest.fixture
def history(tmp_path: Any) -> Iterator[HistoryWriter]:
    with HistoryWriter(os.path.join(tmp_path, "history.jsonl")) as writer:
        yield writer


def hand_schedule(events: list[FaultEvent], nodes: list[str], mode: str = "blackhole") -> Schedule:
    faults = tuple(dict.fromkeys(e.fault for e in events))
    return Schedule.from_json(Schedule(0, tuple(nodes), mode, 1.0, 10.0, faults, tuple(events)).to_json())


def nemesis_events(history: HistoryWriter) -> list[dict[str, Any]]:
    return [e for e in read_history(history.path) if e["process"] == "nemesis"]


def test_executor_runs_a_replayed_partition_exactly_and_records_it(net: EchoMesh, history: HistoryWriter) -> None:
    grudge = {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}
    topology = {"name": "custom", "grudge": grudge, "description": "custom: n1 isolated"}
    schedule = hand_schedule([FaultEvent(0.0, "start", "partition", "partition#1", {"topology": topology}),
                              FaultEvent(1.0, "stop", "partition", "partition#1")], list(net.nodes))
    replayed = Schedule.from_json(json.loads(schedule.dumps()))
    cluster = EchoCluster(net, RecordingBackend(list(net.nodes)))
    with ScheduleExecutor(replayed, cluster, history) as nemesis:
        faults = nemesis.current_faults()
        nemesis.start()
        wait_until(lambda: any(f.startswith("partition") for f in faults), 2.0, "the partition to start")
        cut = net.connect("n2", "n1")
        cut.send(b"across the cut")
        assert cut.receive(14, 0.3) == b""
        assert b"across the cut" not in net.nodes["n1"].received()
        wait_until(nemesis.done, 5.0, "the schedule to finish")
        assert faults == []
        fresh = net.connect("n2", "n1")
        fresh.send(b"healed")
        assert fresh.receive(6, 2.0) == b"healed"
        assert nemesis.heal_all(ready_timeout=1.0) == "n2"
    events = nemesis_events(history)
    assert [e["f"] for e in events] == ["start-partition", "stop-partition", "heal"]
    assert events[0]["grudge"] == grudge and events[0]["mode"] == "blackhole" and events[0]["id"] == "partition#1"
    assert events[2]["ready"] is True and events[2]["leader"] == "n2"
    assert events[0]["color"] == PARTITION.color, "a start carries its kind's colour"
    assert net.mesh.is_healed()


def test_the_same_fault_has_its_kinds_colour_in_the_report_and_the_porcupine_annotations() -> None:
    events = [{"index": 0, "time": 0, "type": "info", "process": "nemesis", "f": "start-kill", "value": "kill n1",
               "fault": "kill:one", "id": "kill:one#1", "color": KILL.color},
              {"index": 1, "time": 10**9, "type": "info", "process": "nemesis", "f": "start-partition",
               "value": "partition", "fault": "partition-ring", "id": "partition-ring#1"},  # an older run: no colour
              {"index": 2, "time": 2 * 10**9, "type": "info", "process": "nemesis", "f": "heal", "value": "healed"}]
    report = {i.name: i.color for i in fault_intervals(events)}
    annotations = {a["tag"]: a["color"] for a in nemesis_annotations(events) if a["end"] != a["start"]}
    assert report == {"kill:one": KILL.color, "partition-ring": PARTITION.color}
    assert annotations == {"nemesis kill": KILL.color, "nemesis partition": PARTITION.color}
    assert KILL.color != PARTITION.color


def test_each_kind_heals_only_what_it_leaves_behind(net: EchoMesh, history: HistoryWriter) -> None:
    schedule = hand_schedule([FaultEvent(0.0, "start", "pause", "p#1", {"target": "one", "nodes": ["n1"]})],
                             list(net.nodes))
    backend = RecordingBackend(list(net.nodes))
    backend.states["n2"] = DEAD  # a node that died by itself: a pause schedule does not hide it by a restart
    with ScheduleExecutor(schedule, EchoCluster(net, backend), history) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 5.0, "the schedule to finish")
        nemesis.heal_all(ready_timeout=None)
    heal = nemesis_events(history)[-1]
    # paused nodes are resumed before anything else (a paused node's full sockets block Toxiproxy)
    assert heal["f"] == "heal" and heal["resumed"] == ["n1"] and "restarted" not in heal
    assert backend.calls == [("pause", "n1"), ("resume", "n1")] and backend.states["n2"] == DEAD


def test_executor_applies_link_faults_from_a_generated_schedule(net: EchoMesh, history: HistoryWriter) -> None:
    spec = TestSpec(nemesis=("latency:n3", "partition-one-way"), nemesis_interval=0.3, time_limit=1.2, seed=3)
    schedule = generate_schedule(spec, list(net.nodes))
    cluster = EchoCluster(net, RecordingBackend(list(net.nodes)))
    with ScheduleExecutor(schedule, cluster, history) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 5.0, "the schedule to finish")
        nemesis.heal_all(ready_timeout=1.0)
    events = nemesis_events(history)
    starts = [e for e in events if e["f"].startswith("start-")]
    stops = [e for e in events if e["f"].startswith("stop-")]
    assert len(starts) == len(stops) == sum(1 for e in schedule.events if e.action == "start")
    latency = next(e for e in starts if e["f"] == "start-latency")
    assert latency["nodes"] == ["n3"] and set(latency["links"]) == {
        "n1-n3-peer", "n2-n3-peer", "n3-n1-peer", "n3-n2-peer"}
    partition = next(e for e in starts if e["f"] == "start-partition")
    planned = next(e for e in schedule.events if e.id == partition["id"])
    assert partition["grudge"] == planned.params["topology"]["grudge"]
    assert not any("error" in e for e in events)
    assert net.mesh.is_healed()


def test_process_faults_act_on_planned_targets_and_are_undone_at_stop(net: EchoMesh,
                                                                       history: HistoryWriter) -> None:
    nodes = list(net.nodes)
    schedule = hand_schedule([
        FaultEvent(0.0, "start", "kill:n1+n3", "k#1", {"target": "n1+n3", "nodes": ["n1", "n3"]}),
        FaultEvent(0.1, "start", "pause-primary", "p#1", {"target": "primary", "fallback": "n1"}),
        FaultEvent(0.2, "stop", "kill:n1+n3", "k#1"),
        FaultEvent(0.3, "stop", "pause-primary", "p#1"),
        FaultEvent(0.4, "start", "rolling-restart", "r#1", {"order": ["n3", "n1", "n2"]}),
        FaultEvent(0.5, "stop", "rolling-restart", "r#1"),
    ], nodes)
    backend = RecordingBackend(nodes)
    with ScheduleExecutor(schedule, EchoCluster(net, backend, leader="n2"), history) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 5.0, "the schedule to finish")
    assert backend.calls == [("kill", "n1"), ("kill", "n3"), ("pause", "n2"), ("restart", "n1"),
                             ("restart", "n3"), ("resume", "n2"),
                             ("restart", "n3"), ("restart", "n1"), ("restart", "n2")]
    events = {e.get("id", "") + ":" + e["f"]: e for e in nemesis_events(history)}
    assert events["k#1:start-kill"]["nodes"] == ["n1", "n3"]
    assert events["p#1:start-pause"]["nodes"] == ["n2"] and events["p#1:start-pause"]["leader"] == "n2"
    assert events["r#1:start-rolling-restart"]["order"] == ["n3", "n1", "n2"]
    restarts = [e for e in nemesis_events(history) if e["f"] == "restart"]
    assert [e["nodes"] for e in restarts] == [["n3"], ["n1"], ["n2"]] and {e["id"] for e in restarts} == {"r#1"}
    assert events["r#1:stop-rolling-restart"]["value"] == "rolling restart over: restarted n3,n1,n2"
    assert "heal" in {e["f"] for e in nemesis_events(history)}, "leaving the context heals"


def test_a_rolling_restart_reports_nodes_that_do_not_rejoin_in_time(net: EchoMesh,
                                                                    history: HistoryWriter) -> None:
    schedule = hand_schedule([FaultEvent(0.0, "start", "rolling-restart", "r#1", {"order": ["n1", "n2"]}),
                              FaultEvent(0.1, "stop", "rolling-restart", "r#1")], list(net.nodes))
    backend = RecordingBackend(list(net.nodes))
    cluster = EchoCluster(net, backend, leader=None)  # nobody ever names a leader
    with ScheduleExecutor(schedule, cluster, history, ready_timeout=0.2) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 5.0, "the schedule to finish")
        nemesis.heal_all(ready_timeout=None)
    stop = next(e for e in nemesis_events(history) if e["f"] == "stop-rolling-restart")
    assert stop["value"] == "rolling restart over: restarted n1,n2; did not rejoin in time: n1,n2"
    assert backend.calls == [("restart", "n1"), ("restart", "n2")]


def test_primary_without_a_leader_falls_back_to_the_planned_node(net: EchoMesh, history: HistoryWriter) -> None:
    schedule = hand_schedule([FaultEvent(0.0, "start", "kill-primary", "k#1",
                                         {"target": "primary", "fallback": "n3"})], list(net.nodes))
    backend = RecordingBackend(list(net.nodes))
    with ScheduleExecutor(schedule, EchoCluster(net, backend, leader=None), history) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 5.0, "the schedule to finish")
        nemesis.heal_all(ready_timeout=0.2)
    start, stop, heal = nemesis_events(history)
    assert start["nodes"] == ["n3"] and start["leader"] is None
    assert stop["f"] == "stop-kill" and stop["value"] == "restarted n3", "heal_all stops what is still active"
    assert backend.calls == [("kill", "n3"), ("restart", "n3")]
    assert heal["restarted"] == [] and heal["ready"] is False


def test_stop_is_prompt_and_heal_all_undoes_every_active_fault(net: EchoMesh, history: HistoryWriter) -> None:
    spec = TestSpec(nemesis=("partition-ring", "pause:all", "bandwidth"), nemesis_interval=0.2,
                    time_limit=600, seed=1)
    schedule = generate_schedule(spec, list(net.nodes))
    backend = RecordingBackend(list(net.nodes))
    cluster = EchoCluster(net, backend)
    with ScheduleExecutor(schedule, cluster, history) as nemesis:
        faults = nemesis.current_faults()
        nemesis.start()
        wait_until(lambda: len(faults) == 3, 3.0, "three faults at once")
        started = time.monotonic()
        nemesis.stop()
        assert time.monotonic() - started < 1.0, "stop returns promptly"
        nemesis.heal_all(ready_timeout=1.0)
        assert faults == []
    assert all(state == RUNNING for state in backend.states.values())
    assert net.mesh.is_healed()
    events = nemesis_events(history)
    started_ids = {e["id"] for e in events if e["f"].startswith("start-")}
    stopped_ids = {e["id"] for e in events if e["f"].startswith("stop-")}
    assert started_ids == stopped_ids, "every started fault is stopped, even when stopped early"
    assert events[-1]["f"] == "heal"


def test_leaving_on_an_exception_heals_without_waiting_for_readiness(net: EchoMesh,
                                                                     history: HistoryWriter) -> None:
    schedule = hand_schedule([
        FaultEvent(0.0, "start", "partition", "p#1", {"topology": {
            "name": "halves", "grudge": {"n1": ["n2"], "n2": ["n1"]}, "description": "n1 | n2"}}),
        FaultEvent(0.0, "start", "kill", "k#1", {"target": "one", "nodes": ["n3"]}),
    ], list(net.nodes), mode="reject")
    backend = RecordingBackend(list(net.nodes))
    cluster = EchoCluster(net, backend)
    with pytest.raises(KeyboardInterrupt):
        with ScheduleExecutor(schedule, cluster, history) as nemesis:
            nemesis.start()
            wait_until(lambda: len(nemesis.current_faults()) == 2, 3.0, "both faults")
            raise KeyboardInterrupt
    assert net.mesh.is_healed() and backend.states["n3"] == RUNNING
    assert cluster.ready_waits == 0


def test_a_failing_action_is_recorded_and_the_schedule_goes_on(net: EchoMesh, history: HistoryWriter) -> None:
    schedule = hand_schedule([
        FaultEvent(0.0, "start", "kill", "k#1", {"target": "one", "nodes": ["n1"]}),
        FaultEvent(0.1, "stop", "kill", "k#1"),
        FaultEvent(0.2, "start", "kill", "k#2", {"target": "one", "nodes": ["n2"]}),
        FaultEvent(0.3, "stop", "kill", "k#2"),
    ], list(net.nodes))
    backend = RecordingBackend(list(net.nodes), failing={"n1"})
    with ScheduleExecutor(schedule, EchoCluster(net, backend), history) as nemesis:
        nemesis.start()
        wait_until(nemesis.done, 5.0, "the schedule to finish")
        nemesis.heal_all(ready_timeout=None)
    events = nemesis_events(history)
    assert "n1 refuses to kill" in events[0]["error"]
    assert [e["id"] for e in events[1:3]] == ["k#2", "k#2"] and backend.calls == [("kill", "n2"), ("restart", "n2")]
    assert nemesis.errors and "k#1" in nemesis.errors[0]


def test_a_schedule_for_other_nodes_is_refused() -> None:
    class NoCluster:
        nodes = ["a", "b"]
    schedule = generate_schedule(TestSpec(nemesis=("kill",)), NODES)
    with pytest.raises(FaultbedError, match="the cluster does not have"):
        ScheduleExecutor(schedule, NoCluster(), None)  # type: ignore[arg-type]
