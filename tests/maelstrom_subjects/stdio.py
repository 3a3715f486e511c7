"""Driving Maelstrom node programs directly over their stdin/stdout, as Maelstrom itself would.

`NodeProcess` is one program; `Wires` is a few of them with the test as the network: it carries
node-to-node messages, can drop them, and hands client replies to the test.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

NODES_DIR = Path(__file__).resolve().parents[1] / "maelstrom_nodes"
WAIT = 10.0


def python_node(name: str) -> list[str]:
    return [sys.executable, str(NODES_DIR / name)]


class NodeProcess:
    """One node program; every line it prints is queued, parsed."""

    def __init__(self, argv: list[str], node_id: str, cwd: str | None = None) -> None:
        self.node_id = node_id
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1, cwd=cwd)
        self.out: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.put(json.loads(line))

    def send(self, message: dict[str, Any]) -> None:
        """Write one message; to a node that is gone it is lost, as on a network."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def next(self, timeout: float = WAIT) -> dict[str, Any]:
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.node_id} printed nothing in {timeout} s; stderr so far: "
                                 f"{self.stderr()[-2000:]}") from None

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WAIT)


class Wires:
    """Nodes n1..nN with the test as their network. `drop(src, dest)` decides per message whether the
    network loses it; client replies (to c*) are collected by in_reply_to."""

    def __init__(self, argv: list[str], count: int) -> None:
        self.ids = [f"n{i}" for i in range(1, count + 1)]
        self.home = tempfile.mkdtemp(prefix="faultbed-wires-")  # a working directory a node, kept over restarts
        for node in self.ids:
            os.mkdir(os.path.join(self.home, node))
        self.nodes = {n: NodeProcess(argv, n, os.path.join(self.home, n)) for n in self.ids}
        self.drop: Callable[[dict[str, Any]], bool] = lambda message: False
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.carried = 0
        self._msg_ids = itertools.count(1)
        self._stop = threading.Event()
        for node in self.ids:
            self.nodes[node].send({"src": "c0", "dest": node,
                                   "body": {"type": "init", "msg_id": 0, "node_id": node, "node_ids": self.ids}})
            init_ok = self.nodes[node].next()
            assert init_ok["body"]["type"] == "init_ok" and init_ok["body"]["in_reply_to"] == 0, init_ok
        self._threads = [threading.Thread(target=self._carry, args=(n,), daemon=True) for n in self.ids]
        for thread in self._threads:
            thread.start()

    def _carry(self, node: str) -> None:
        while not self._stop.is_set():
            try:
                message = self.nodes[node].out.get(timeout=0.1)
            except queue.Empty:
                continue
            dest = message["dest"]
            if dest in self.nodes:
                if not self.drop(message):
                    self.carried += 1
                    self.nodes[dest].send(message)
            else:
                self.replies.put(message)

    def request(self, node: str, body: dict[str, Any], client: str = "c1") -> dict[str, Any]:
        """Send a client request and wait for its reply's body."""
        reply = self.ask(node, body, client, WAIT)
        if reply is None:
            raise AssertionError(f"no reply from {node} to {body} in {WAIT} s")
        return reply

    def ask(self, node: str, body: dict[str, Any], client: str = "c1", seconds: float = WAIT) -> dict[str, Any] | None:
        """Send a client request; its reply's body, or None when none came in `seconds`."""
        msg_id = next(self._msg_ids)
        self.nodes[node].send({"src": client, "dest": node, "body": dict(body, msg_id=msg_id)})
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                reply = self.replies.get(timeout=0.1)
            except queue.Empty:
                continue
            assert reply["dest"] == client and reply["src"] == node, reply
            if reply["body"].get("in_reply_to") == msg_id:
                return dict(reply["body"])
        return None

    def restart(self, node: str, argv: list[str]) -> None:
        """Kill a node (its memory is gone) and start it again with init."""
        self.nodes[node].stop()
        fresh = NodeProcess(argv, node, os.path.join(self.home, node))
        fresh.send({"src": "c0", "dest": node,
                    "body": {"type": "init", "msg_id": 0, "node_id": node, "node_ids": self.ids}})
        assert fresh.next()["body"]["type"] == "init_ok"
        self.nodes[node] = fresh

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WAIT)
        for node in self.nodes.values():
            node.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "Wires":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
