"""The Docker backend's process faults, labels and cleanup, on whoami nodes in real containers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from docker.client import DockerClient
import pytest

from faultbed.cluster.backend import DEAD, PAUSED, RUNNING
from faultbed.cluster.docker import LABEL_HARNESS, LABEL_RUN, alive, gc_docker
from faultbed.cluster.registry import STATE_DIR, process_start_time
from faultbed.errors import SetupError
from tests.docker.conftest import new_run_id, remove_run, resources_of_run, wait_until_answering
from tests.docker.whoami import ask_name

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("whoami3-docker-backend")]  # one whoami3 per module

ROOT = Path(__file__).resolve().parents[2]


def answers(backend, node: str, timeout: float = 1.0) -> bool:
    try:
        return ask_name(backend.client_address(node), timeout) == node
    except OSError:
        return False


def test_every_node_runs_and_answers_on_its_loopback_client_port(whoami3):
    assert whoami3.node_names() == ["n1", "n2", "n3"]
    for node in whoami3.node_names():
        assert whoami3.state(node) == RUNNING
        host, port = whoami3.client_address(node)
        assert host == "127.0.0.1" and port < 32768
        assert ask_name((host, port)) == node


def test_kill_stops_the_node_at_once_and_restart_keeps_its_data(whoami2):
    data_dir = whoami2.plan("n1").data_dir
    code, _ = whoami2.container("n1").exec_run(["sh", "-c", f"echo kept > {data_dir}/marker; echo kept > /tmp/marker"])
    assert code == 0
    whoami2.kill("n1")
    assert whoami2.state("n1") == DEAD
    assert not answers(whoami2, "n1")
    assert whoami2.state("n2") == RUNNING, "a kill touches one node"
    whoami2.restart("n1")
    assert whoami2.state("n1") == RUNNING
    wait_until_answering(whoami2, ["n1"], timeout=10)
    assert (Path(data_dir) / "marker").read_text() == "kept\n"
    code, output = whoami2.container("n1").exec_run(["cat", f"{data_dir}/marker", "/tmp/marker"])
    assert (code, output) == (0, b"kept\nkept\n")


def test_pause_freezes_the_node_and_resume_thaws_it(whoami2):
    whoami2.pause("n2")
    try:
        assert whoami2.state("n2") == PAUSED
        assert not answers(whoami2, "n2", timeout=0.5), "a frozen node cannot answer"
    finally:
        whoami2.resume("n2")
    assert whoami2.state("n2") == RUNNING
    assert answers(whoami2, "n2", timeout=2.0)


def test_restart_of_a_running_or_paused_node_starts_a_new_process(whoami2):
    before = whoami2.pid("n1")
    whoami2.restart("n1")
    wait_until_answering(whoami2, ["n1"], timeout=10)
    after = whoami2.pid("n1")
    assert before is not None and after is not None and after != before
    whoami2.pause("n1")
    whoami2.restart("n1")
    assert whoami2.state("n1") == RUNNING
    wait_until_answering(whoami2, ["n1"], timeout=10)


def test_pausing_or_resuming_a_dead_node_is_a_setup_error(whoami2):
    whoami2.kill("n2")
    with pytest.raises(SetupError, match="n2 is not running"):
        whoami2.pause("n2")
    with pytest.raises(SetupError, match="n2 is not paused"):
        whoami2.resume("n2")
    whoami2.kill("n2")  # killing a dead node is fine
    assert whoami2.state("n2") == DEAD


def test_node_output_goes_to_its_log_in_the_results_directory_across_restarts(whoami2):
    whoami2.restart("n1")
    wait_until_answering(whoami2, ["n1"], timeout=10)
    log_path = Path(whoami2.log_path("n1"))
    assert log_path == Path(whoami2.run_dir) / "nodes" / "n1.log"
    assert log_path.read_text().count("n1 listening") == 2
    assert log_path.stat().st_uid == os.getuid()


def test_every_container_and_network_carries_the_run_label(whoami3):
    client = DockerClient.from_env(timeout=30)
    try:
        label = {"label": f"{LABEL_RUN}={whoami3.run_id}"}
        containers = client.containers.list(all=True, filters=label)
        networks = client.networks.list(filters=label)
    finally:
        client.close()
    assert sorted(c.name for c in containers) == sorted(
        [f"faultbed-{whoami3.run_id}-{n}" for n in ("n1", "n2", "n3")] + [f"faultbed-{whoami3.run_id}-toxiproxy"])
    assert sorted(n.name for n in networks) == [f"faultbed-{whoami3.run_id}-{n}" for n in ("n1", "n2", "n3")]
    assert all(c.labels[LABEL_HARNESS].startswith(f"{os.getpid()}:") for c in containers)


def test_teardown_leaves_no_container_and_no_network(tmp_path):
    from tests.docker.conftest import start_whoami

    backend = start_whoami(tmp_path, 3)
    backend.kill("n2")
    backend.pause("n3")  # a paused container must go too
    assert len(resources_of_run(backend.run_id)) == 7
    backend.__exit__(None, None, None)
    assert resources_of_run(backend.run_id) == []
    assert (tmp_path / "nodes" / "toxiproxy.log").exists()


def test_a_failed_start_removes_what_it_made(tmp_path, monkeypatch):
    import faultbed.cluster.docker as docker_backend
    from faultbed.cluster.docker import DockerBackend
    from faultbed.spec import TestSpec
    from tests.docker.whoami import SYSTEM

    def broken_node(self, node, image):
        raise SetupError("node creation failed on purpose")

    monkeypatch.setattr(docker_backend.DockerBackend, "_create_node", broken_node)
    backend = DockerBackend(SYSTEM, TestSpec(nodes=2, backend="docker"), str(tmp_path), new_run_id())
    with pytest.raises(SetupError, match="on purpose"):
        backend.__enter__()
    assert resources_of_run(backend.run_id) == []


HARNESS = """
import sys, time
from faultbed.cluster.docker import DockerBackend
from faultbed.spec import TestSpec
from tests.docker.whoami import SYSTEM
backend = DockerBackend(SYSTEM, TestSpec(nodes=2, backend="docker"), sys.argv[1], sys.argv[2]).__enter__()
print("started", flush=True)
time.sleep(120)
"""


def test_gc_after_a_killed_harness_leaves_nothing_and_spares_live_runs(whoami2, tmp_path):
    run_id = new_run_id()
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(tmp_path / "crashed"), run_id], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert harness.stdout is not None
        assert harness.stdout.readline().strip() == "started"
        assert len(resources_of_run(run_id)) == 5
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
        removed = gc_docker()
        assert resources_of_run(run_id) == []
        assert removed >= 5, "at least the crashed run's 3 containers and 2 networks"
        assert len(resources_of_run(whoami2.run_id)) == 5, "the live run in this process stays"
        assert answers(whoami2, "n1")
    finally:
        harness.kill()
        harness.wait(timeout=10)
        remove_run(run_id)
        Path(STATE_DIR, f"{run_id}.json").unlink(missing_ok=True)  # the crashed harness's record


def test_a_run_is_alive_while_its_harness_runs_or_while_named_live():
    own = f"{os.getpid()}:{process_start_time(os.getpid())}"
    assert alive({LABEL_RUN: "r1", LABEL_HARNESS: own}, None)
    assert not alive({LABEL_RUN: "r1", LABEL_HARNESS: f"{os.getpid()}:1"}, None), "a reused pid is not the harness"
    assert not alive({LABEL_RUN: "r1"}, None), "no harness label: nobody owns it"
    assert alive({LABEL_RUN: "r1"}, {"r1"}) and not alive({LABEL_RUN: "r1", LABEL_HARNESS: own}, {"r2"})
