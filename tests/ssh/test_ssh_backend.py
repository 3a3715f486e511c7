"""The ssh backend on three real hosts (containers with sshds on a private network, conftest.py):
raftkv and etcd across hosts under partitions, kills and pauses; a planted bug found; the partition
real between hosts; a second run on the same hosts refused while the first holds them; a harness killed
mid-run cleaned up by `faultbed gc --hosts`; bad hosts refused in one line with nothing left anywhere."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from faultbed.cluster.docker.network import hosts as subnet_hosts
from faultbed.cluster.ssh.backend import SSHBackend
from faultbed.cluster.ssh.testhosts import TestHosts
from faultbed.cluster.start import start_cluster
from faultbed.cluster.systems.raftkv import SYSTEM as RAFTKV
from faultbed.spec import TestSpec
from tests.integration.conftest import faultbed_command, processes_of_run, run_faultbed, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("ssh-hosts")]

WORKDIR = "/var/tmp/faultbed"
RUN_TIMEOUT = 600


def left_on(hosts: TestHosts) -> dict[str, list[str]]:
    """What each host still holds of faultbed: entries of the workdir and processes other than its sshd."""
    left = {}
    for name in hosts.names:
        _, listing = hosts.exec(name, ["sh", "-c", f"ls -A {WORKDIR} 2>/dev/null; ps -e -o comm="])
        left[name] = [line for line in listing.split()
                      if line not in ("docker-init", "sshd", "sh", "ps", "ls", "cache")]
    return left


def runs_on(hosts: TestHosts) -> list[str]:
    """Run directories in the hosts' workdirs (the cache is not a run)."""
    found = []
    for name in hosts.names:
        _, listing = hosts.exec(name, ["ls", "-A", WORKDIR])
        found += [f"{name}:{entry}" for entry in listing.split() if entry != "cache" and "No such" not in listing]
    return found


def ssh_masters_to(hosts: TestHosts) -> list[str]:
    """ssh client processes on this machine that talk to one of the hosts."""
    result = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True, text=True, check=True)
    addresses = set(hosts.addresses.values())
    return [line for line in result.stdout.splitlines()
            if " ssh " in f" {line.split(None, 1)[-1]}" and any(f" {a}" in line for a in addresses)]


def assert_report_as_for_local_runs(run_dir: Path, logs: list[str]) -> None:
    """report.html has the sections of a local run's report, and the node logs came back into it: each
    log linked and its last line shown."""
    page = (run_dir / "report.html").read_text()
    assert re.findall(r'<section id="([^"]+)"', page) == ["checkers", "plots", "faults", "spec", "files", "logs"]
    logs_section = page[page.index('<section id="logs">'):]
    for name in logs:
        assert f'<a href="nodes/{name}.log">' in logs_section, f"{name}'s log is linked"
        last = (run_dir / "nodes" / f"{name}.log").read_text().strip().splitlines()[-1]
        assert html.escape(last) in logs_section, f"{name}'s log tail is shown"


def test_raftkv_five_nodes_on_three_hosts_under_partition_kill_pause_is_valid_and_leaves_nothing(
        ssh_hosts: TestHosts, tmp_path: Path) -> None:
    inventory = ssh_hosts.write_inventory({"n1": "h1", "n2": "h2", "n3": "h3", "n4": "h1", "n5": "h2"},
                                          path=str(tmp_path / "hosts.toml"))
    store = tmp_path / "store"
    proc = run_faultbed("run", "--backend", "ssh", "--hosts", inventory, "--nodes", "5", "--nemesis",
                        "partition,kill,pause", "--nemesis-interval", "3", "--time-limit", "12", "--rate", "50",
                        "--seed", "11", "--quiet", "--store", str(store), timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    verdict = json.loads((run_dir / "results.json").read_text())
    assert verdict["valid"] is True and verdict["counts"]["ok"] > 20, verdict["counts"]
    [raft] = [r for r in verdict["results"] if r["checker"] == "raft-invariants"]
    assert sorted(raft["details"]["nodes"]) == ["n1", "n2", "n3", "n4", "n5"], "every node's Raft trace came back"
    for node in ("n1", "n2", "n3", "n4", "n5"):
        assert "started: raft" in (run_dir / "nodes" / f"{node}.log").read_text(), f"{node}'s log came back"
    assert sorted(p.name for p in (run_dir / "nodes").glob("toxiproxy-*.log")) == [
        "toxiproxy-h1.log", "toxiproxy-h2.log", "toxiproxy-h3.log"]
    hosts = json.loads((run_dir / "hosts.json").read_text())["hosts"]
    assert hosts["h1"]["nodes"] == ["n1", "n4"] and all("skew_ms" in h for h in hosts.values()), hosts
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    kinds = {e["f"] for e in events if e["process"] == "nemesis"}
    assert {"start-partition", "start-kill", "start-pause"} <= kinds, kinds
    assert_report_as_for_local_runs(run_dir, ["n1", "n2", "n3", "n4", "n5", "toxiproxy-h1", "toxiproxy-h2",
                                              "toxiproxy-h3"])
    assert left_on(ssh_hosts) == {"h1": [], "h2": [], "h3": []}
    assert processes_of_run(verdict["run_id"]) == [] and ssh_masters_to(ssh_hosts) == []


def test_raftkv_stale_reads_bug_is_detected_across_hosts(ssh_hosts: TestHosts, tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = run_faultbed("run", "--backend", "ssh", "--hosts", ssh_hosts.inventory_path, "--nodes", "5",
                        "--nemesis", "partition", "--nemesis-interval", "3", "--time-limit", "12", "--rate", "100",
                        "--bug", "stale-reads",
                        "--seed", "3", "--quiet", "--store", str(store), timeout=RUN_TIMEOUT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verdict: INVALID" in proc.stdout
    assert ((store / "latest").resolve() / "linearizability.html").exists()
    assert runs_on(ssh_hosts) == []


def test_etcd_three_nodes_on_three_hosts_under_partition_kill_pause_is_valid(ssh_hosts: TestHosts,
                                                                           tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = run_faultbed("run", "--system", "etcd", "--backend", "ssh", "--hosts", ssh_hosts.inventory_path,
                        "--nodes", "3", "--nemesis", "partition,kill,pause", "--nemesis-interval", "3",
                        "--time-limit", "12", "--rate", "50", "--seed", "5", "--quiet", "--store", str(store),
                        timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    assert json.loads((run_dir / "results.json").read_text())["counts"]["ok"] > 20
    assert "etcdserver" in (run_dir / "nodes" / "n2.log").read_text() or \
        "raft" in (run_dir / "nodes" / "n2.log").read_text()
    assert left_on(ssh_hosts) == {"h1": [], "h2": [], "h3": []}


# -- the partition is real across hosts -------------------------------------------------------------
SOCKET = re.compile(r"^\d+\s+\d+\s+(\S+):(\d+)\s+(\S+):(\d+)\s*(.*)$")  # ss -H, one state: no state column


@dataclass
class Socket:
    local: tuple[str, int]
    remote: tuple[str, int]
    pids: set[int]
    received: int = 0


def sockets(hosts: TestHosts, host: str) -> list[Socket]:
    """Established TCP sockets of `host` (ss -tinp): local, remote, owning pids, bytes received."""
    _, output = hosts.exec(host, ["ss", "-tinpH", "state", "established"])
    found: list[Socket] = []
    for line in output.splitlines():
        match = None if line.startswith(("\t", " ")) else SOCKET.match(line)
        if match:
            found.append(Socket((match[1], int(match[2])), (match[3], int(match[4])),
                                {int(p) for p in re.findall(r"pid=(\d+)", match[5])}))
        elif found:
            received = re.search(r"bytes_received:(\d+)", line)
            if received:
                found[-1].received = int(received[1])
    return found


def bytes_between(hosts: TestHosts, backend: SSHBackend, node: str, peer: str) -> dict[tuple[object, ...], int]:
    """Bytes `node` has received on each socket that carries its traffic with `peer`: its own connection
    to its proxy for peer, and connections that peer's host's Toxiproxy made to node's port."""
    host = backend.host_of(node).name
    address, port = next(link.listen for link in backend.mesh.links_between(node, peer)).rsplit(":", 1)
    peer_host = backend.host_of(peer).address
    pid = backend.remote_pid(node)
    return {(s.local, s.remote): s.received for s in sockets(hosts, host)
            if pid in s.pids and (s.remote == (address, int(port)) or s.remote[0] == peer_host)}


def grown(before: dict[tuple[object, ...], int], after: dict[tuple[object, ...], int]) -> int:
    return sum(count - before.get(key, 0) for key, count in after.items())


def test_the_partition_is_real_across_hosts_and_no_peer_is_dialled_directly(ssh_hosts: TestHosts,
                                                                            tmp_path: Path) -> None:
    inventory = ssh_hosts.write_inventory({"n1": "h1", "n2": "h2", "n3": "h3"}, path=str(tmp_path / "hosts.toml"))
    run_id = "test-" + uuid.uuid4().hex[:8]
    spec = TestSpec(backend="ssh", nodes=3, options={"hosts": inventory})
    backend = SSHBackend(RAFTKV, spec, str(tmp_path / "run"), run_id)
    with start_cluster(RAFTKV, backend, (), ready_timeout=120):
        node_ports = {n: set(backend.plan(n).ports.values()) for n in backend.node_names()}
        toxiproxies = {name: backend.toxiproxy_pid(name) for name in ssh_hosts.names}
        # 1. no node connects to another host: its outgoing connections go to its own host's loopback proxies
        outgoing = 0
        for node in backend.node_names():
            host = backend.host_of(node).name
            for s in sockets(ssh_hosts, host):
                if backend.remote_pid(node) in s.pids and s.local[1] not in node_ports[node]:
                    assert s.remote[0].startswith("127.0.1."), f"{node} dialled {s.remote} directly"
                    outgoing += 1
                # a connection from this host to another host's node port is this host's Toxiproxy's
                if s.remote[0] in ssh_hosts.addresses.values() and s.remote[1] != 22 \
                        and any(s.remote[1] in ports for ports in node_ports.values()):
                    assert s.pids == {toxiproxies[host]}, s
        assert outgoing > 0, "pysyncobj dials its peers: some node must have connected through a proxy"
        # 2. cut n1 off (blackhole): not one byte from n1 reaches n2, while n2 and n3 keep talking
        backend.mesh.partition({"n1": {"n2", "n3"}, "n2": {"n1"}, "n3": {"n1"}}, name="cut")
        time.sleep(1.0)  # what was in flight before the cut has arrived
        before_cut, before_ok = bytes_between(ssh_hosts, backend, "n2", "n1"), \
            bytes_between(ssh_hosts, backend, "n2", "n3")
        time.sleep(3.0)
        assert grown(before_cut, bytes_between(ssh_hosts, backend, "n2", "n1")) == 0
        assert grown(before_ok, bytes_between(ssh_hosts, backend, "n2", "n3")) > 0, "n2 and n3 still talk"
        backend.mesh.end_partition("cut")
        assert left_on(ssh_hosts)["h1"], "the run is live on h1 while it runs"
    assert left_on(ssh_hosts) == {"h1": [], "h2": [], "h3": []}


# -- a crashed harness, then gc ----------------------------------------------------------------------
def test_sigkill_of_the_harness_then_gc_hosts_leaves_nothing_on_any_host(ssh_hosts: TestHosts,
                                                                        tmp_path: Path) -> None:
    store = tmp_path / "store"
    harness = subprocess.Popen(faultbed_command(
        "run", "--backend", "ssh", "--hosts", ssh_hosts.inventory_path, "--nodes", "3", "--nemesis", "partition",
        "--time-limit", "300", "--quiet", "--store", str(store)), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def started() -> bool:
            history = store / "latest" / "history.jsonl"
            return history.exists() and '"ok"' in history.read_text()
        wait_for(started, RUN_TIMEOUT, "the run's main phase")
        assert all(left_on(ssh_hosts).values()), "nodes and Toxiproxy run on every host"
        [run] = runs_on(ssh_hosts)[:1]
        run_id = run.split(":", 1)[1]
        assert_second_run_refused(ssh_hosts, tmp_path, run_id)  # while the first runs
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=30)
    assert processes_of_run(run_id), "the run's ssh connections outlive a SIGKILLed harness"
    assert_second_run_refused(ssh_hosts, tmp_path, run_id)  # the crashed run holds the hosts until gc
    gc = run_faultbed("gc", "--hosts", ssh_hosts.inventory_path, timeout=RUN_TIMEOUT)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert f"run {run_id}: stopped" in gc.stdout, gc.stdout
    assert left_on(ssh_hosts) == {"h1": [], "h2": [], "h3": []}
    for name in ssh_hosts.names:
        _, listing = ssh_hosts.exec(name, ["ls", "-A", WORKDIR])
        assert listing.split() == [], f"{name} keeps {listing} (cache included: no run is left)"
    assert processes_of_run(run_id) == []


def assert_second_run_refused(hosts: TestHosts, tmp_path: Path, holder: str) -> None:
    """Another run on the same hosts: one line naming the run that holds them, exit 3, nothing of its own left."""
    before = runs_on(hosts)
    proc = run_faultbed("run", "--backend", "ssh", "--hosts", hosts.inventory_path, "--nodes", "3",
                        "--nemesis", "none", "--time-limit", "5", "--quiet", "--store", str(tmp_path / "second"),
                        timeout=RUN_TIMEOUT)
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("faultbed: raftkv")]
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert len(lines) == 1 and f"is in use by faultbed run {holder}" in lines[0] \
        and f"faultbed gc --hosts {hosts.inventory_path}" in lines[0], proc.stderr
    assert runs_on(hosts) == before, "the refused run made nothing on any host"


def test_a_run_refused_by_one_busy_host_leaves_the_other_hosts_free(ssh_hosts: TestHosts, tmp_path: Path) -> None:
    on_h1 = ssh_hosts.write_inventory({"n1": "h1", "n2": "h1", "n3": "h1"}, path=str(tmp_path / "h1.toml"),
                                      hosts=["h1"])
    spec = TestSpec(backend="ssh", nodes=3, options={"hosts": on_h1})
    backend = SSHBackend(RAFTKV, spec, str(tmp_path / "run"), "test-" + uuid.uuid4().hex[:8])
    with start_cluster(RAFTKV, backend, (), ready_timeout=120):
        assert_second_run_refused(ssh_hosts, tmp_path, backend.run_id)  # h2 and h3 were free: taken, then let go
        left = left_on(ssh_hosts)
        assert left["h2"] == [] and left["h3"] == [], left
        assert "lock" in left["h1"] and backend.run_id in left["h1"], left
    assert left_on(ssh_hosts) == {"h1": [], "h2": [], "h3": []}


# -- bad hosts ---------------------------------------------------------------------------------------
def bad_inventories(hosts: TestHosts, tmp_path: Path) -> dict[str, tuple[str, str]]:
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    assert hosts.subnet is not None
    nobody = subnet_hosts(hosts.subnet)[60]
    good = hosts.write_inventory(path=str(tmp_path / "good.toml"))
    text = Path(good).read_text()
    cases = {
        "unreachable": (text.replace(hosts.addresses["h3"], nobody), "unreachable"),
        "refused": (text.replace(f'address = "{hosts.addresses["h2"]}"',
                                 f'address = "{hosts.addresses["h2"]}"\nport = 2222'), "refused the connection"),
        "wrong key": (text.replace(f'address = "{hosts.addresses["h2"]}"',
                                   f'address = "{hosts.addresses["h2"]}"\nkey = "{other_key}"'), "refused our key"),
        "unknown host key": (text.replace(hosts.known_hosts, str(empty)), "unknown host key"),
    }
    paths = {}
    for case, (content, expected) in cases.items():
        path = tmp_path / f"{case.replace(' ', '-')}.toml"
        path.write_text(content)
        paths[case] = (str(path), expected)
    return paths


def test_unreachable_refused_wrong_key_and_unknown_host_key_are_one_line_exit_3_and_leave_nothing(
        ssh_hosts: TestHosts, tmp_path: Path) -> None:
    for case, (path, expected) in bad_inventories(ssh_hosts, tmp_path).items():
        proc = run_faultbed("run", "--backend", "ssh", "--hosts", path, "--nodes", "3", "--nemesis", "none",
                            "--time-limit", "5", "--quiet", "--store", str(tmp_path / "store"), timeout=RUN_TIMEOUT)
        lines = [line for line in proc.stderr.splitlines() if not line.startswith("faultbed: raftkv")]
        assert proc.returncode == 3, (case, proc.stderr)
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, (case, proc.stderr)
        assert runs_on(ssh_hosts) == [], (case, "nothing may be left on the hosts")
        assert ssh_masters_to(ssh_hosts) == [], (case, "no ssh connection may be left here")
        assert left_on(ssh_hosts) == {"h1": [], "h2": [], "h3": []}, case
    assert os.path.exists(ssh_hosts.inventory_path)
