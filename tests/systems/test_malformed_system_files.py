"""Malformed system files: each gets one clear line naming the file and the key, exit 3, and nothing runs.

Every case is the valid BASE with one mistake, run through `faultbed run` as a user would.
The node command carries a marker, so a test can tell that no node of that file started.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from faultbed.cluster.systems.file import load_system_file
from tests.integration.conftest import processes_with

BASE = '''
name = "mykv"
description = "a system that would sleep"
workloads = ["register"]
[ports]
peer = "peer"
client = "client"
[node]
command = ["/bin/sh", "-c", "sleep 1000", "MARKER", "{node}", "{port.peer}", "{list.peers}"]
[node.lists.peers]
item = "{peer}={dial}"
[ready]
tcp = true
timeout = 5
[client]
protocol = "json-lines"
[bugs.slow]
args = ["--slow"]
'''

# (case id, (old, new) replacement in BASE or a whole text, what the line must name)
CASES = [
    ("bad-toml", ('protocol = "json-lines"', 'protocol = "json-lines'), "not valid TOML"),
    ("missing-name", ('name = "mykv"', ''), "name: missing"),
    ("bad-name", ('name = "mykv"', 'name = "My KV"'), "name: 'My KV' must be lowercase"),
    ("name-wrong-type", ('name = "mykv"', 'name = 3'), "name: must be a string, not an integer"),
    ("missing-workloads", ('workloads = ["register"]', ''), "workloads: missing"),
    ("unknown-workload", ('workloads = ["register"]', 'workloads = ["registers"]'), "unknown workload 'registers'"),
    ("workloads-wrong-type", ('workloads = ["register"]', 'workloads = "register"'), "workloads: must be a list"),
    ("unknown-top-key", ('description =', 'descripton ='), "descripton: unknown key"),
    ("missing-ports", ('[ports]\npeer = "peer"\nclient = "client"\n', ''), "ports: missing"),
    ("unknown-role", ('peer = "peer"', 'peer = "peers"'), "ports.peer: role 'peers' is not one of"),
    ("no-client-port", ('client = "client"', 'client = "peer"'), "no port has the role client"),
    ("missing-command", ('command = [', 'commands = ['), "node.command: missing"),
    ("empty-command", (None, 'command = []'), "node.command: must not be empty"),
    ("command-a-string", (None, 'command = "/bin/sh -c sleep"'), "node.command: must be a list, not a string"),
    ("command-not-strings", (None, 'command = ["/bin/sleep", 1000]'), "node.command: must be a list of strings"),
    ("unknown-placeholder", ('"{node}"', '"{nod}"'), "node.command: unknown placeholder {nod}"),
    ("undeclared-port", ('"{port.peer}"', '"{port.http}"'), "node.command: unknown placeholder {port.http}"),
    ("dial-a-client-port", ('"{port.peer}"', '"{dial.n2.client}"'), "unknown placeholder {dial.n2.client}"),
    ("undeclared-list", ('"{list.peers}"', '"{list.members}"'), "unknown placeholder {list.members}"),
    ("lone-brace", ('"{node}"', '"{node"'), "node.command: lone '{'"),
    ("unknown-filter", ('"{node}"', '"{node|upper}"'), "unknown filter 'upper'"),
    ("env-not-a-string", ('[node.lists.peers]', 'env = { GOMAXPROCS = 1 }\n[node.lists.peers]'),
     "node.env.GOMAXPROCS: must be a string"),
    ("node-key-typo", ('[node.lists.peers]', 'restart_cmd = ["x"]\n[node.lists.peers]'),
     "node.restart_cmd: unknown key"),
    ("list-item-placeholder", ('item = "{peer}={dial}"', 'item = "{name}={dial}"'),
     "node.lists.peers.item: unknown placeholder {name}"),
    ("two-ready-checks", ('tcp = true', 'tcp = true\nlog = "up"'), "ready: needs exactly one of"),
    ("bad-log-regex", ('tcp = true', 'log = "up("'), "ready.log: not a valid regular expression"),
    ("ready-timeout-a-string", ('timeout = 5', 'timeout = "5s"'), "ready.timeout: must be a number"),
    ("unknown-protocol", ('protocol = "json-lines"', 'protocol = "grpc"'), "unknown client protocol 'grpc'"),
    ("client-port-undeclared", ('protocol = "json-lines"', 'protocol = "json-lines"\nport = "api"'),
     "client.port: undeclared port 'api'"),
    ("client-port-is-peer", ('protocol = "json-lines"', 'protocol = "json-lines"\nport = "peer"'),
     "client.port: port 'peer' has the role peer"),
    ("process-without-command", ('protocol = "json-lines"', 'protocol = "process"'), "client.command: missing"),
    ("http-body-placeholder", ('protocol = "json-lines"',
                               'protocol = "http"\n[client.operations.write]\npath = "/kv"\nbody = { v = "{val}" }'),
     "client.operations.write.body: unknown placeholder {val}"),
    ("leader-request-needs-json-lines",
     ('protocol = "json-lines"', 'protocol = "process"\ncommand = ["/bin/cat"]\n'
                                 '[leader]\nrequest = { f = "status" }\nfield = "leader"'),
     "leader.request: asks over the client's connection: needs protocol json-lines"),
    ("process-program-missing", ('protocol = "json-lines"', 'protocol = "process"\ncommand = ["./client", "{address}"]'),
     "client.command: no executable program"),
    ("bug-changes-nothing", ('args = ["--slow"]', 'description = "nothing"'), "bugs.slow: changes nothing"),
    ("bug-placeholder", ('args = ["--slow"]', 'args = ["--slow={speed}"]'), "bugs.slow.args: unknown placeholder"),
    ("bad-delivery", ('description =', 'delivery = "twice"\ndescription ='), "delivery: 'twice' is not one of"),
    ("unknown-backend", ('description =', 'backends = ["k8s"]\ndescription ='), "backends: unknown backend 'k8s'"),
    ("node-file-outside-data-dir", ('[node.lists.peers]', '[node.files]\n"../x.conf" = "a"\n[node.lists.peers]'),
     "node.files.../x.conf: must be a relative path inside the node's data directory"),
    ("node-file-bad-mode", ('[node.lists.peers]', '[node.files]\n"c" = { content = "a", mode = "rw" }\n'
                                                  '[node.lists.peers]'),
     "node.files.c.mode: 'rw' is not an octal file mode"),
    ("node-file-placeholder", ('[node.lists.peers]', '[node.files]\n"c" = "port {port.api}"\n[node.lists.peers]'),
     "node.files.c: unknown placeholder {port.api}"),
    ("raft-trace-outside-data-dir", ('description =', 'raft_trace = "../trace.jsonl"\ndescription ='),
     "raft_trace: '../trace.jsonl' must be a relative path inside the node's data directory"),
    ("raft-trace-absolute", ('description =', 'raft_trace = "/tmp/trace.jsonl"\ndescription ='),
     "raft_trace: '/tmp/trace.jsonl' must be a relative path"),
    ("raft-trace-not-a-string", ('description =', 'raft_trace = true\ndescription ='),
     "raft_trace: must be a string"),
    ("docker-file-missing", ('[client]', '[docker]\nfiles = { "/opt/x" = "./no-such-file" }\n[client]'),
     "docker.files./opt/x: no such file"),
]


def malformed(case: tuple[str | None, str]) -> str:
    old, new = case
    if old is None:  # replace the command line
        start = BASE.index("command = [")
        end = BASE.index("\n", start)
        return BASE[:start] + new + BASE[end:]
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_there_are_at_least_30_cases_and_the_base_is_valid(tmp_path):
    assert len(CASES) >= 30
    path = tmp_path / "base.toml"
    path.write_text(BASE)
    system = load_system_file(str(path))
    assert system.peer_ports == ("peer",) and system.client_port == "client"


@pytest.mark.parametrize("case, change, named", CASES, ids=[case[0] for case in CASES])
def test_a_malformed_system_file_gets_one_line_exit_3_and_nothing_runs(tmp_path, case, change, named):
    marker = f"faultbed-malformed-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "mykv.toml"
    path.write_text(malformed(change).replace("MARKER", marker))
    store = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-m", "faultbed", "run", "--system", "./mykv.toml", "--time-limit", "2",
                           "--quiet", "--store", str(store)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 3, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in lines[0] and named in lines[0], lines[0]
    assert processes_with(marker) == [], "no node of a malformed file may start"
    assert not store.exists() or not any(store.iterdir()), "no run directory is made"
