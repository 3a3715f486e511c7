"""The System and Client faultbed sees: a node command line and a JSON-lines client."""

import json
import socket
from dataclasses import asdict

from faultbed.cluster.systems import DEFAULT_TRAITS, FAIL, INFO, Outcome


class PrimaryKVClient:
    """One connection, opened on first use and dropped after any error (a late reply must never
    be read as the answer to the next request)."""

    def __init__(self, address, node, timeout):
        self.address, self.node, self.sock = address, node, None

    def _call(self, request, timeout):
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=timeout)
            self.reader = self.sock.makefile("rb")
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall((json.dumps(request) + "\n").encode())
            line = self.reader.readline()
            if not line:
                raise ConnectionError("node closed the connection")
            return json.loads(line)
        except (OSError, ValueError):
            self.close()
            raise

    def invoke(self, f, key, value, timeout):
        try:
            reply = self._call({"f": f, "key": key, "value": value}, timeout)
        except (OSError, ValueError) as exc:
            return Outcome(FAIL if f == "read" else INFO, error=str(exc), node=self.node)
        return Outcome(reply["type"], reply.get("value"), reply.get("error"), self.node)

    def status(self, timeout):
        return self._call({"f": "status"}, timeout)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class PrimaryKV:
    name = "primarykv"
    description = "primary-copy KV: n1 holds the data, the others forward to it (a third-party plugin)"
    ports = ("peer", "client")
    peer_ports = ("peer",)
    client_port = "client"
    bugs = {}
    workloads = ("register", "primarykv-register")
    traits = DEFAULT_TRAITS

    def command(self, plan):
        return [plan.python, "-m", "primarykv.node", json.dumps(asdict(plan))]

    def open_client(self, address, node, timeout, bugs=()):
        return PrimaryKVClient(address, node, timeout)


SYSTEM = PrimaryKV()
