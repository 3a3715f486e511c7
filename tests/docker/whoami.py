"""A tiny system for backend tests: every node answers each connection, on every port, with its name.

The node program is passed inline (`python3 -c`), so it runs in any node image.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Mapping

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems import DEFAULT_TRAITS, OK, Outcome

SERVER = """
import json, socket, sys, threading
name, host, ports = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def serve(port):
    with socket.create_server((host, port)) as listener:
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.sendall((name + "\\n").encode())
threads = [threading.Thread(target=serve, args=(p,)) for p in ports.values()]
for t in threads: t.start()
print(name, "listening on", ports, flush=True)
for t in threads: t.join()
"""

# Run inside a node container: connect to argv[1]:argv[2], print the name that answers or the error.
DIAL = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
        s.settimeout(float(sys.argv[3]))
        print(s.makefile().readline().strip() or "closed")
except OSError as exc:
    print(type(exc).__name__)
"""


def ask_name(address: tuple[str, int], timeout: float = 2.0) -> str:
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.settimeout(timeout)
        name = sock.makefile().readline().strip()
    if not name:  # docker-proxy accepts and closes when nothing listens in the container yet
        raise ConnectionResetError(f"{address}: closed without an answer")
    return name


class WhoamiClient:
    def __init__(self, address: tuple[str, int], node: str, timeout: float) -> None:
        self.address = address
        self.node = node
        ask_name(address, timeout)

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        return Outcome(OK, ask_name(self.address, timeout), node=self.node)

    def status(self, timeout: float) -> dict[str, Any]:
        return {"leader": "n1", "name": ask_name(self.address, timeout)}

    def close(self) -> None:
        pass


class WhoamiSystem:
    name = "whoami"
    ports: tuple[str, ...] = ("peer", "client")
    peer_ports: tuple[str, ...] = ("peer",)
    client_port = "client"
    bugs: Mapping[str, str] = {}
    workloads: tuple[str, ...] = ()
    traits = DEFAULT_TRAITS

    def command(self, plan: NodePlan) -> list[str]:
        return [plan.python, "-c", SERVER, plan.name, plan.listen_host, json.dumps(plan.ports)]

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = ()) -> WhoamiClient:
        return WhoamiClient(address, node, timeout)


SYSTEM = WhoamiSystem()
