"""The Maelstrom path end to end: `faultbed run --bin` with a tiny node of our own, real routers,
real Toxiproxy, porcupine; process faults on the program; a bad program is one clear line, exit 3."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from faultbed.cluster import registry
from faultbed.cluster.backend import DEAD, PAUSED, RUNNING
from faultbed.cluster.start import start_cluster
from faultbed.cluster.systems.maelstrom import spec_fields
from faultbed.errors import SetupError
from faultbed.message_counts import describe as describe_messages
from faultbed.plan import resolve
from faultbed.spec import TestSpec
from tests.integration.conftest import processes_of_run, processes_with, results, run_faultbed, wait_for

pytestmark = pytest.mark.integration

TINY = str(Path(__file__).with_name("tiny_node.py"))
SHORT = ["--nodes", "3", "--rate", "60", "--concurrency", "4", "--quiet"]


def program_of(router_pid: int) -> int:
    """The user's program: the router's one child."""
    children = Path(f"/proc/{router_pid}/task/{router_pid}/children").read_text().split()
    assert len(children) == 1, f"the router {router_pid} has children {children}"
    return int(children[0])


def process_state(pid: int) -> str:
    """The kernel's one-letter state of `pid` (T stopped, Z zombie), or "gone"."""
    return registry.process_state(pid) or "gone"


def test_lin_kv_through_a_primary_is_valid_under_partitions_and_node_messages_cross_the_mesh(tmp_path):
    store = tmp_path / "store"
    proc = run_faultbed("run", "--bin", TINY, "--workload", "lin-kv", *SHORT, "--time-limit", "6",
                        "--nemesis", "partition", "--nemesis-interval", "2", "--seed", "5", "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    verdict = results(run_dir)
    [linearizable] = [r for r in verdict["results"] if r["checker"] == "linearizable"]
    assert linearizable["valid"] is True and verdict["counts"]["ok"] > 50, verdict
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["system"] == "maelstrom" and spec["options"]["bin"] == TINY, "the program is recorded for replay"
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    keys = {e["key"] for e in events if e["process"] != "nemesis"}
    assert keys <= set(range(8)) and all(isinstance(k, int) for k in keys), "lin-kv keys are integers"
    # n2 and n3 forward every request to n1 over TCP through their proxies, and n1 answers the same way
    for node in ("n2", "n3"):
        counts = json.loads((run_dir / "data" / node / "maelstrom-counts.json").read_text())
        assert counts["sent"]["n1"] > 10 and counts["received"]["n1"] > 10, counts
    messages = describe_messages(str(run_dir))
    assert messages["n2"]["sent"] > 10 and messages["n1"]["received"] > 10, messages
    assert sum(m["dropped"] + m["unsent"] for m in messages.values()) > 0, "partitions cost messages"
    assert "Messages between nodes" in (run_dir / "report.html").read_text()
    assert "tiny node n2 up" in (run_dir / "nodes" / "n2.log").read_text(), "the program's stderr is the node log"
    assert processes_of_run(verdict["run_id"]) == []


def test_pause_stops_the_program_kill_ends_it_and_restart_sends_init_again(tmp_path):
    spec = TestSpec(workload="echo", nodes=2, nemesis=(), store=str(tmp_path), **spec_fields(TINY))
    plan = resolve(spec)
    run_dir = tmp_path / "run"
    backend = plan.backend(plan.system, spec, str(run_dir), uuid.uuid4().hex[:12])
    with start_cluster(plan.system, backend, (), plan.ready_timeout) as cluster:
        router = backend.pid("n1")
        program = program_of(router)
        backend.pause("n1")
        wait_for(lambda: process_state(program) == "T", 5, "the user's program to stop with its router")
        backend.resume("n1")
        assert process_state(program) != "T" and backend.state("n1") == RUNNING
        backend.kill("n1")
        assert backend.state("n1") == DEAD
        wait_for(lambda: process_state(program) in ("gone", "Z"), 5,
                 "kill to end the user's program too")
        backend.restart("n1")
        cluster.wait_ready(30, nodes=["n1"])
        assert program_of(backend.pid("n1")) != program
        client = cluster.client("n1")
        try:
            answer = client.invoke("echo", None, "after restart", 5)
        finally:
            client.close()
        assert (answer.type, answer.value) == ("ok", "after restart")
        assert backend.state("n2") == RUNNING and backend.state("n1") != PAUSED
    log = (run_dir / "nodes" / "n1.log").read_text()
    assert log.count("tiny node n1 up") == 2, "the restarted program was sent init again"


@pytest.mark.parametrize("misbehave, said", [
    ("exit", "exited before answering init with status 4"),
    ("garbage", "printed 'hello, I am not JSON' on stdout, which is not a Maelstrom message"),
])
def test_a_bad_program_is_one_line_naming_the_node_exit_3_and_nothing_left(tmp_path, misbehave, said):
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    proc = run_faultbed("run", "--bin", TINY, f"--bin-arg=--misbehave", "--bin-arg", misbehave,
                        f"--bin-arg={marker}", "--workload", "echo", *SHORT, "--time-limit", "3",
                        "--nemesis", "none", "--store", str(tmp_path / "store"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("faultbed: maelstrom echo on")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "maelstrom node n" in lines[0] and said in lines[0], lines[0]
    assert processes_with(marker) == [], "no program of the run is left running"


def test_a_program_that_dies_mid_run_is_an_anomaly_naming_the_node_and_its_last_words(tmp_path):
    # crash-later: after 20 messages the program prints a line that is no message; its router ends
    store = tmp_path / "store"
    proc = run_faultbed("run", "--bin", TINY, "--bin-arg=--misbehave", "--bin-arg", "crash-later", "--workload",
                        "echo", *SHORT, "--time-limit", "4", "--nemesis", "none", "--store", str(store))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    [exits] = [r for r in results(run_dir)["results"] if r["checker"] == "node-exits"]
    assert exits["valid"] is False and exits["details"]["crashes"], exits
    crash = exits["details"]["crashes"][0]
    assert crash["node"] in ("n1", "n2", "n3") and crash["status"] == 3, crash
    assert any("which is not a Maelstrom message" in line for line in crash["log"]), crash["log"]
    assert "exited on its own (status 3)" in exits["summary"], exits["summary"]
    assert "node-exits: INVALID" in proc.stdout + proc.stderr or "node-exits" in (run_dir / "report.html").read_text()
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [e["node"] for e in events if e.get("f") == "node-exit"].count(crash["node"]) == 1, "each exit once"


def test_nodes_faultbed_kills_and_restarts_are_no_exit_of_their_own(tmp_path):
    store = tmp_path / "store"
    proc = run_faultbed("run", "--bin", TINY, "--workload", "echo", *SHORT, "--time-limit", "5", "--nemesis",
                        "kill,pause", "--nemesis-interval", "1", "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    history = (run_dir / "history.jsonl").read_text()
    assert '"start-kill"' in history and '"node-exit"' not in history
    assert "node-exits" not in [r["checker"] for r in results(run_dir)["results"]]


def test_a_program_that_never_answers_init_is_named_and_stopped(tmp_path):
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    fields = spec_fields(TINY, ["--misbehave", "silent", marker])
    fields["options"]["init_timeout"] = 1.0
    spec = TestSpec(workload="echo", nodes=2, nemesis=(), store=str(tmp_path), **fields)
    plan = resolve(spec)
    backend = plan.backend(plan.system, spec, str(tmp_path / "run"), uuid.uuid4().hex[:12])
    with pytest.raises(SetupError, match=r"maelstrom node n\d .*never answered init within 1s"):
        with start_cluster(plan.system, backend, (), plan.ready_timeout):
            pass
    assert processes_with(marker) == []


@pytest.mark.parametrize("args, said", [
    (["--bin", "/no/such/node"], "--bin /no/such/node: no such file"),
    (["--bin", __file__.replace(".py", ".missing")], "no such file"),
    (["--bin-arg", "x"], "give --bin PATH too"),
    (["--bin", TINY, "--system", "etcd"], "drop --system"),
    (["--bin", TINY, "--workload", "register"], "does not run workload register"),
])
def test_bad_bin_flags_are_one_line_and_exit_3_before_anything_starts(tmp_path, args, said):
    workload = [] if "--workload" in args else ["--workload", "echo"]
    proc = run_faultbed("run", *args, *workload, "--quiet", "--store", str(tmp_path / "s"))
    assert proc.returncode == 3 and said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "s").exists(), "nothing was stored"


def test_a_file_that_is_not_executable_is_refused(tmp_path):
    script = tmp_path / "node.py"
    script.write_text("print('hi')\n")
    proc = run_faultbed("run", "--bin", str(script), "--workload", "echo", "--quiet", "--store", str(tmp_path / "s"))
    assert proc.returncode == 3 and "not an executable file" in proc.stderr, proc.stderr


def _received_from(cluster, node: str, peer: str) -> tuple[int, int]:
    """(messages, bytes) `node`'s router has received from `peer`: what crossed the proxy peer->node."""
    client = cluster.client(node)
    try:
        counts = client.status(10)["counts"]
    finally:
        client.close()
    return counts["received"].get(peer, 0), counts["received_bytes"].get(peer, 0)


def _broadcast(cluster, node: str, values: range) -> None:
    client = cluster.client(node)
    try:
        for value in values:
            assert client.invoke("broadcast", None, value, 10).type == "ok"
    finally:
        client.close()


@pytest.mark.parametrize("mode", ["blackhole", "reject"])
def test_under_a_partition_no_byte_crosses_between_cut_nodes_and_traffic_resumes_after_heal(tmp_path, mode):
    spec = TestSpec(workload="broadcast", nodes=3, nemesis=(), store=str(tmp_path), **spec_fields(TINY))
    plan = resolve(spec)
    backend = plan.backend(plan.system, spec, str(tmp_path / "run"), uuid.uuid4().hex[:12])
    with start_cluster(plan.system, backend, (), plan.ready_timeout) as cluster:
        _broadcast(cluster, "n1", range(0, 5))  # the tiny node floods each new value to every other node
        wait_for(lambda: _received_from(cluster, "n2", "n1")[0] >= 5, 10, "n1's gossip to reach n2")
        cluster.mesh.partition({"n1": {"n2", "n3"}, "n2": {"n1"}, "n3": {"n1"}}, mode=mode)
        before = {node: _received_from(cluster, node, "n1") for node in ("n2", "n3")}
        _broadcast(cluster, "n1", range(5, 25))
        _broadcast(cluster, "n2", range(100, 110))  # n2 and n3 still talk to each other
        wait_for(lambda: _received_from(cluster, "n3", "n2")[0] >= 10, 10, "n2's gossip to reach n3")
        after = {node: _received_from(cluster, node, "n1") for node in ("n2", "n3")}
        assert after == before, f"bytes crossed from n1 during the partition: {before} -> {after}"
        cluster.mesh.heal()
        fresh = iter(range(1000, 2000))

        def crossing() -> bool:  # messages sent while n1's router reconnects are lost: keep sending new ones
            _broadcast(cluster, "n1", range(next(fresh), 0, -1)[:1])
            return all(_received_from(cluster, node, "n1")[1] > before[node][1] for node in ("n2", "n3"))

        wait_for(crossing, 15, "n1's messages to cross again after the heal", interval=0.2)


@pytest.mark.parametrize("service, valid", [("lin-kv", True), ("seq-kv", False)])
def test_services_keep_their_promise_lin_kv_is_linearizable_and_seq_kv_serves_stale_reads(tmp_path, service, valid):
    # every node relays the client's read/write/cas to the service, which lives beside n1, through the mesh
    store = tmp_path / "store"
    proc = run_faultbed("run", "--bin", TINY, "--bin-arg=--via", "--bin-arg", service, "--workload", "lin-kv",
                        "--nodes", "3", "--rate", "100", "--concurrency", "6", "--keys", "2", "--time-limit", "6",
                        "--nemesis", "partition" if valid else "none", "--nemesis-interval", "2", "--seed", "3",
                        "--quiet", "--store", str(store))
    assert proc.returncode == (0 if valid else 1), proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    assert results(run_dir)["counts"]["ok"] > 100
    if valid:  # n2's and n3's requests crossed their links to n1, where the services live
        messages = describe_messages(str(run_dir))
        assert messages["n2"]["sent"] > 20 and messages["n3"]["sent"] > 20, messages
