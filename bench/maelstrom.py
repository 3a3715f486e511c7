"""Maelstrom routers: messages/s between two nodes and the latency one hop adds, beside direct TCP.

Two nodes run bench/maelstrom_node.py behind their routers (local backend, real Toxiproxy, no
faults). Throughput: n1's program writes COUNT messages for n2 as fast as it can; the time until
n2's program has read the last. Latency: ROUNDS sequential ping/pong round trips between the two
programs, timed inside n1's program; a hop is half a round trip. The reference, measured in the same
run: the same JSON lines between two Python sockets over loopback, with no router and no proxy.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import threading
import time
import uuid

from faultbed.cluster.start import start_cluster
from faultbed.cluster.systems.maelstrom import spec_fields
from faultbed.cluster.systems.maelstrom.client import MaelstromClient
from faultbed.plan import resolve
from faultbed.spec import TestSpec

PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "maelstrom_node.py")
COUNT = 20_000
ROUNDS = 500
REPEATS = 3


def through_routers() -> tuple[list[float], list[float]]:
    """(messages/s samples, seconds per hop samples) through two routers and the proxy between them."""
    spec = TestSpec(workload="echo", nodes=2, nemesis=(), **spec_fields(PROGRAM))
    plan = resolve(spec)
    rates, hops = [], []
    with tempfile.TemporaryDirectory() as run_dir:
        backend = plan.backend(plan.system, spec, run_dir, uuid.uuid4().hex[:12])
        with start_cluster(plan.system, backend, (), plan.ready_timeout) as cluster:
            client = MaelstromClient(backend.client_address("n1"), "n1", 10, None)
            try:
                client.call("n1", {"type": "pingpong", "count": 20, "to": "n2"}, 60)  # warm: links connected
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    client.call("n1", {"type": "blast", "count": COUNT, "to": "n2"}, 120)
                    rates.append(COUNT / (time.perf_counter() - start))
                    reply = client.call("n1", {"type": "pingpong", "count": ROUNDS, "to": "n2"}, 120)
                    hops.append(float(reply["seconds"]) / ROUNDS / 2)
            finally:
                client.close()
    return rates, hops


def _line(seq: int, **extra: object) -> bytes:
    return (json.dumps({"src": "n1", "dest": "n2", "body": {"type": "ping", "seq": seq, **extra}}) + "\n").encode()


def direct_tcp() -> tuple[list[float], list[float]]:
    """The same lines between two sockets on loopback: no router, no proxy, no pipes."""
    rates, hops = [], []
    for _ in range(REPEATS):
        server = socket.create_server(("127.0.0.1", 0))
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
        for sock in (sender, receiver):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = threading.Event()

        def receive() -> None:
            with receiver.makefile("rb") as lines:
                for count, line in enumerate(lines, 1):
                    json.loads(line)
                    if count == COUNT:
                        received.set()
                        return

        thread = threading.Thread(target=receive)
        start = time.perf_counter()
        thread.start()
        with sender.makefile("wb") as out:
            for seq in range(COUNT):
                out.write(_line(seq))
        received.wait(120)
        rates.append(COUNT / (time.perf_counter() - start))
        thread.join(10)
        back = receiver.makefile("rb")
        forth = sender.makefile("rb")
        start = time.perf_counter()
        for round_ in range(ROUNDS):
            sender.sendall(_line(round_, round=round_))
            json.loads(back.readline())
            receiver.sendall(_line(round_, pong=True))
            json.loads(forth.readline())
        hops.append((time.perf_counter() - start) / ROUNDS / 2)
        for stream in (back, forth):
            stream.close()
        for sock in (sender, receiver, server):
            sock.close()
    return rates, hops


def main() -> int:
    load = os.getloadavg()[0]
    direct_rates, direct_hops = direct_tcp()
    router_rates, router_hops = through_routers()
    rate, reference = statistics.median(router_rates), statistics.median(direct_rates)
    hop, reference_hop = statistics.median(router_hops), statistics.median(direct_hops)
    print(f"maelstrom routers, 2 nodes, no faults: {rate:,.0f} messages/s n1 -> n2 through router + proxy + router "
          f"(direct TCP, same JSON lines: {reference:,.0f} messages/s); median of {REPEATS} x {COUNT} messages",
          flush=True)
    print(f"maelstrom routers: one hop {hop * 1e3:.3f} ms (direct TCP {reference_hop * 1e3:.3f} ms; "
          f"added {(hop - reference_hop) * 1e3:.3f} ms per hop); median of {REPEATS} x {ROUNDS} round trips; "
          f"load average {load:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
