"""System files: placeholders, node command lines, and each generic client against a real tiny server.

The servers (tests/systems/files/jsonkv.py, httpkv.py) and the process client program
(kvclient.py) are real processes started by the local backend from the system files
next to them; nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from faultbed.cluster import registry
from faultbed.cluster.backend import NodePlan
from faultbed.cluster.local import LocalBackend
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.systems import FAIL, INFO, OK, Outcome
from faultbed.cluster.systems.file import FileSystem, load_system_file, template
from faultbed.cluster.systems.file.command import node_command
from faultbed.spec import TestSpec
from tests.integration.conftest import processes_of_run

FILES = Path(__file__).resolve().parent / "files"
OP_TIMEOUT = 5.0  # generous: under load, starting a process client's interpreter can take over a second


# -- placeholders ---------------------------------------------------------------------
def test_a_lone_placeholder_keeps_its_type_and_text_around_it_makes_a_string():
    assert template.render("{value}", {"value": 3}) == 3
    assert template.render("{value}", {"value": [1, 2]}) == [1, 2]
    assert template.render("v={value}", {"value": [1, 2]}) == "v=[1,2]"
    assert template.render("{{literal}} {node}", {"node": "n1"}) == "{literal} n1"


def test_filters_apply_left_to_right_and_decoders_undo_them():
    encoded = template.render("{value|json|base64}", {"value": {"a": 1}})
    assert encoded == "eyJhIjoxfQ=="
    assert template.extract({"kvs": [{"value": encoded}]}, "kvs.0.value|base64|json") == {"a": 1}
    assert template.extract({"kvs": []}, "kvs.0.value|base64|json") is None
    assert template.render("/kv/{key|url}", {"key": "a b/c"}) == "/kv/a%20b%2Fc"


@pytest.mark.parametrize("text, problem", [
    ("{nope}", "unknown placeholder {nope}"),
    ("{node|rot13}", "unknown filter 'rot13'"),
    ("a { b", "lone '{'"),
    ("{}", "bad placeholder"),
])
def test_bad_templates_are_refused_with_the_reason(text, problem):
    with pytest.raises(template.TemplateError, match=problem.replace("{", r"\{").replace("(", r"\(")):
        template.check(text, lambda name: name == "node")


def plan(name: str, dial_base: int = 9000) -> NodePlan:
    nodes = ("n1", "n2", "n3")
    return NodePlan(name=name, nodes=nodes, listen_host="127.0.0.1", ports={"raft": 7001, "client": 7002},
                    identities={n: f"127.0.0.1:70{i}1" for i, n in enumerate(nodes)},
                    dial={p: {"raft": f"127.0.0.1:{dial_base + i}"} for i, p in enumerate(nodes) if p != name},
                    data_dir="/tmp/run/data/" + name, python="/usr/bin/python3", bugs=("slow",))


def write_system(tmp_path: Path, node: str, extra: str = "") -> FileSystem:
    path = tmp_path / "sys.toml"
    path.write_text(f'''
name = "s"
workloads = ["register"]
[ports]
raft = "peer"
client = "client"
[node]
{node}
[node.lists.members]
item = "{{peer}}=http://{{identity}}"
include_self = true
[node.lists.others]
item = "{{dial}}"
separator = ";"
[client]
protocol = "json-lines"
[bugs.slow]
args = ["--slow"]
env = {{ SLOW = "{{node}}" }}
{extra}
''')
    return load_system_file(str(path))


def test_node_command_renders_peer_lists_dial_addresses_ports_and_bug_switches(tmp_path):
    system = write_system(tmp_path, 'command = ["./bin/kv", "{node}@{index}", "{list.members}", "{list.others}", '
                                    '"{dial.n3.raft}", "{port.client}", "{data_dir}", "{nodes}"]')
    assert node_command(system.spec, plan("n2")) == [
        "/usr/bin/env", "SLOW=n2",
        str(tmp_path / "bin" / "kv"), "n2@2",
        "n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7011,n3=http://127.0.0.1:7021",
        "127.0.0.1:9000;127.0.0.1:9002", "127.0.0.1:9002", "7002", "/tmp/run/data/n2", "n1,n2,n3", "--slow"]


def test_restart_command_runs_on_every_start_after_the_first(tmp_path):
    """The sh wrapper, executed for real: the first start runs command, later ones restart_command."""
    system = write_system(tmp_path, 'command = ["/bin/echo", "first", "{node}"]\n'
                                    'restart_command = ["/bin/echo", "again", "{node}"]')
    node_plan = plan("n1")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    node_plan = NodePlan(**{**node_plan.__dict__, "data_dir": str(data_dir), "bugs": ()})
    command = node_command(system.spec, node_plan)
    outputs = [subprocess.run(command, capture_output=True, text=True, timeout=10).stdout for _ in range(3)]
    assert outputs == ["first n1\n", "again n1\n", "again n1\n"]


def test_node_files_are_rendered_into_the_data_directory_with_their_mode(tmp_path):
    system = write_system(tmp_path, 'command = ["/bin/true"]\n'
                                    '[node.files]\n'
                                    '"conf/node.conf" = """name = {node}\nmembers = {list.members}\nliteral = {{x}}\n"""\n'
                                    '"cookie" = { content = "secret-{index}", mode = "0400" }')
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    node_plan = NodePlan(**{**plan("n3").__dict__, "data_dir": str(data_dir), "bugs": ()})
    for _ in range(2):  # a restart rewrites them, read-only or not
        node_command(system.spec, node_plan)
    assert (data_dir / "conf" / "node.conf").read_text() == (
        "name = n3\nmembers = n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7011,n3=http://127.0.0.1:7021\n"
        "literal = {x}\n")
    assert (data_dir / "cookie").read_text() == "secret-3"
    assert (data_dir / "cookie").stat().st_mode & 0o777 == 0o400


# -- the generic clients against real servers -----------------------------------------
def one_node(tmp_path: Path, name: str) -> Iterator[RunningCluster]:
    system = load_system_file(str(FILES / name))
    run_id = "test-" + uuid.uuid4().hex[:10]
    with LocalBackend(system, TestSpec(nodes=1), str(tmp_path), run_id) as backend:
        cluster = RunningCluster(system, backend, backend.mesh)
        cluster.run_id = run_id  # type: ignore[attr-defined]
        cluster.leader_at_start = cluster.wait_ready(15, nodes=cluster.nodes)  # type: ignore[attr-defined]
        yield cluster
    assert processes_of_run(run_id) == [], "every node process is stopped"


@pytest.fixture(params=["jsonkv.toml", "httpkv.toml", "processkv.toml"])
def kv(request, tmp_path) -> Iterator[RunningCluster]:
    yield from one_node(tmp_path, request.param)


def test_each_client_reads_writes_and_compares_and_sets(kv):
    client = kv.client("n1", timeout=OP_TIMEOUT)
    try:
        assert client.invoke("read", "k", None, OP_TIMEOUT) == Outcome(OK, None, node="n1"), "a missing key is null"
        assert client.invoke("write", "k", 5, OP_TIMEOUT) == Outcome(OK, 5, node="n1")
        assert client.invoke("read", "k", None, OP_TIMEOUT) == Outcome(OK, 5, node="n1")
        assert client.invoke("cas", "k", [5, 6], OP_TIMEOUT) == Outcome(OK, [5, 6], node="n1")
        assert client.invoke("cas", "k", [5, 7], OP_TIMEOUT) == Outcome(FAIL, error="cas-mismatch", node="n1")
        assert client.invoke("read", "k", None, OP_TIMEOUT).value == 6
    finally:
        client.close()


def test_readiness_names_the_leader_when_the_file_says_how_and_none_otherwise(kv):
    expected = None if kv.system.name == "processkv" else "n1"
    assert kv.leader_at_start == expected  # type: ignore[attr-defined]
    assert kv.leader() == expected


def test_a_stopped_node_gives_fail_because_nothing_was_sent(kv):
    client = kv.client("n1", timeout=OP_TIMEOUT)
    try:
        assert client.invoke("write", "k", 1, OP_TIMEOUT).type == OK
        kv.backend.kill("n1")
        outcome = client.invoke("write", "k", 2, OP_TIMEOUT)
        assert outcome.type == FAIL, outcome
        with pytest.raises((OSError, ValueError)):
            client.status(OP_TIMEOUT)
    finally:
        client.close()


@pytest.fixture
def jsonkv(tmp_path) -> Iterator[RunningCluster]:
    yield from one_node(tmp_path, "jsonkv.toml")


def test_json_lines_unanswered_write_is_info_and_unanswered_read_is_fail(jsonkv):
    client = jsonkv.client("n1", timeout=OP_TIMEOUT)
    try:
        assert client.invoke("write", "hang", 1, 0.3).type == INFO
        assert client.invoke("read", "hang", None, 0.3).type == FAIL
        assert client.invoke("write", "k", 1, OP_TIMEOUT) == Outcome(OK, 1, node="n1"), "a late answer is never taken"
    finally:
        client.close()


@pytest.fixture
def processkv(tmp_path) -> Iterator[RunningCluster]:
    yield from one_node(tmp_path, "processkv.toml")


def test_process_client_unanswered_is_info_and_the_program_is_started_again(processkv):
    client = processkv.client("n1", timeout=OP_TIMEOUT)
    try:
        assert client.invoke("write", "k", 1, OP_TIMEOUT).type == OK
        first = client._inner._proc.pid  # type: ignore[attr-defined]
        assert first in processes_of_run(processkv.run_id), "the program carries its run's labels for gc"  # type: ignore[attr-defined]
        assert client.invoke("write", "hang", 1, 0.5).type == INFO
        assert registry.process_state(first) in (None, "Z")
        assert client.invoke("read", "k", None, OP_TIMEOUT) == Outcome(OK, 1, node="n1")
        assert client._inner._proc.pid != first  # type: ignore[attr-defined]
        died = client.invoke("write", "die", 1, OP_TIMEOUT)
        assert died.type == INFO and "exited (code 7)" in (died.error or ""), died
        assert client.invoke("read", "k", None, OP_TIMEOUT).value == 1
    finally:
        client.close()
    log = Path(processkv.backend.log_path("n1")).with_suffix(".client.log").read_text()
    assert "kvclient for n1 of n1 started" in log, "{node} and {nodes} reach the program; its stderr is kept"


@pytest.fixture
def httpkv(tmp_path) -> Iterator[RunningCluster]:
    yield from one_node(tmp_path, "httpkv.toml")


def test_http_server_errors_are_info_for_writes_and_carry_the_message(httpkv):
    client = httpkv.client("n1", timeout=OP_TIMEOUT)
    try:
        assert client.invoke("cas", "boom", [1, 2], OP_TIMEOUT) == Outcome(INFO, error="boom: disk on fire",
                                                                            node="n1")
        assert client.invoke("append", "k", "x", OP_TIMEOUT).type == FAIL, "an operation the file lacks fails"
    finally:
        client.close()


def test_docker_packages_and_files_name_their_own_node_image(tmp_path):
    """[docker] makes faultbed/node:<code hash>-<extras hash>: a new file content is a new image."""
    from faultbed.cluster.docker import build_arguments, node_image, source_hash

    (tmp_path / "kv").write_text("v1")
    system = write_system(tmp_path, 'command = ["/opt/kv"]', '[docker]\npackages = ["jq"]\nfiles = { "/opt/kv" = "./kv" }')
    assert system.traits.image_packages == ("jq",)
    assert system.traits.image_files == (("/opt/kv", str(tmp_path / "kv")),)
    assert build_arguments(system.traits) == ["--package=jq", f"--file=/opt/kv={tmp_path / 'kv'}"]
    first = node_image(traits=system.traits)
    assert first.startswith(f"faultbed/node:{source_hash()}-") or "FAULTBED_NODE_IMAGE" in os.environ
    (tmp_path / "kv").write_text("v2")
    assert node_image(traits=system.traits) != first or "FAULTBED_NODE_IMAGE" in os.environ
    assert node_image() == f"faultbed/node:{source_hash()}" or "FAULTBED_NODE_IMAGE" in os.environ
