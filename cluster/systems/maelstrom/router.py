"""The per-node router: runs the user's Maelstrom program and carries its messages over real TCP.

    python -m faultbed.cluster.systems.maelstrom.router --config '<NodePlan as JSON>'

It starts the program (the plan's options "bin" and "bin_args"), sends it `init`, and only
once `init_ok` came back opens its two ports:

- peer: other nodes' routers connect here (through the mesh: n2's messages for this node
  cross the proxy n2->n1); each line is written to the program's stdin.
- client: faultbed's workers connect here and send messages from clients (`c7`); whatever the
  program sends to a client goes back on that client's connection. The pseudo-node
  `faultbed-router` answers `status` (readiness and message counts).

Every line the program prints on stdout is routed by its `dest`: a node (over TCP to that
node's proxy address; a connection per peer, reconnected after any trouble), a client, or
a service (lin-kv, seq-kv, lww-kv: services.py; they live in the first node's router, and the
other routers reach them over their link to it). The program's stderr is the node's log.
A peer connection begins with a line naming the router it comes from ({"link": "n2"}); the
router at the other end answers {"linked": "n1"}, and only then is the link up (a proxy accepts a
connection before it knows whether the peer listens).
Counts of messages and bytes sent to and received from each peer are written to
`maelstrom-counts.json` in the data directory (cumulative over restarts), so the report can
show what the mesh delivered and dropped.

A program that is missing, exits, never answers init or prints a line that is not a Maelstrom
message ends the router: one line on stderr naming the node and what happened (the node's log
ends with it), exit status 3, the program killed.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import logging
import os
import signal
import sys
from typing import Any

from faultbed.cluster.systems.maelstrom.services import SERVICES, ServiceHost
from faultbed.message_counts import COUNTS_FILE
from faultbed.cluster.systems.maelstrom.protocol import MAX_LINE, ProtocolError, decode, encode, is_client, shown

log = logging.getLogger("maelstrom-router")

ROUTER = "faultbed-router"   # the pseudo-node a client asks for status
INIT_CLIENT = "c0"           # init comes from this client id (workers' ids start at c1)
INIT_TIMEOUT = 20.0  # generous: a loaded machine can take seconds to start an interpreter
PEER_QUEUE = 100_000         # messages waiting for one peer's connection; beyond that they are dropped (unsent)
RECONNECT_DELAY = (0.02, 0.5)
LINK_ANSWER_TIMEOUT = 2.0    # seconds for the peer's {"linked": ...}; then the connection is tried again
COUNTS_EVERY = 0.5
EXIT_BAD_PROGRAM = 3
STOP_WAIT = 2.0
PR_SET_PDEATHSIG = 1


class ProgramFailed(Exception):
    """The user's program cannot be run as a Maelstrom node; the message says why, in one line."""


def _die_with_parent() -> None:
    """In the program: SIGKILL when the router dies, however it dies (kill -9 included)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class Counts:
    """Messages and bytes per peer, both directions, cumulative over the node's restarts."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data: dict[str, dict[str, int]] = {"sent": {}, "received": {}, "sent_bytes": {},
                                                "received_bytes": {}, "unsent": {}, "unroutable": {}}
        self.dirty = True
        try:
            with open(path, encoding="utf-8") as fh:
                loaded = json.load(fh)
            for name in self.data:
                self.data[name].update({str(k): int(v) for k, v in loaded.get(name, {}).items()})
        except (OSError, ValueError, AttributeError, TypeError):
            pass

    def add(self, kind: str, peer: str, size: int | None = None) -> None:
        table = self.data[kind]
        table[peer] = table.get(peer, 0) + 1
        if size is not None:
            bytes_table = self.data[kind + "_bytes"]
            bytes_table[peer] = bytes_table.get(peer, 0) + size
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh, sort_keys=True)
        os.replace(temporary, self.path)


class PeerLink:
    """Messages for one peer over one TCP connection to the peer's proxy address.

    While the link is down (refused, reset, closed by a heal) messages are not kept: they are
    counted `unsent` and lost, as a real network would lose them; only before the link first came
    up (the peer answered {"linked": ...}: the cluster starting) are they queued. Messages written into a connection that
    is blackholed count as sent and never arrive: the report shows them as dropped by the mesh.
    """

    def __init__(self, router: "Router", peer: str, address: str) -> None:
        self.router = router
        self.peer = peer
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(PEER_QUEUE)
        self.connected = False
        self.ever_connected = False

    def send(self, line: bytes) -> None:
        if self.ever_connected and not self.connected:
            self.router.counts.add("unsent", self.peer)
            return
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.router.counts.add("unsent", self.peer)

    async def run(self) -> None:
        delay = RECONNECT_DELAY[0]
        while True:
            try:
                reader, writer = await asyncio.open_connection(*self.address)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY[1])
                continue
            writer.write(encode({"link": self.router.node}))  # which router the connection comes from
            try:  # the proxy accepted; is the peer's router there (it listens once its program is up)?
                answer = await asyncio.wait_for(reader.readline(), LINK_ANSWER_TIMEOUT)
                linked = json.loads(answer).get("linked") == self.peer if answer else False
            except (OSError, ValueError, AttributeError, asyncio.TimeoutError):
                linked = False
            if not linked:
                writer.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY[1])
                continue
            delay = RECONNECT_DELAY[0]
            self.connected = self.ever_connected = True
            closed = asyncio.ensure_future(reader.read())  # the peer writes nothing more: this is EOF
            try:
                while not closed.done():
                    getter = asyncio.ensure_future(self.queue.get())
                    await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        break
                    lines = [getter.result()]
                    while not self.queue.empty():  # whatever else is waiting goes in the same write
                        lines.append(self.queue.get_nowait())
                    writer.write(b"".join(lines))
                    for line in lines:
                        self.router.counts.add("sent", self.peer, len(line))
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass  # the messages in flight are lost, as on a real network
            finally:
                self.connected = False
                closed.cancel()
                writer.close()
                while not self.queue.empty():
                    self.queue.get_nowait()
                    self.router.counts.add("unsent", self.peer)


class Router:
    """One node: the program, its peers, its clients."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.node: str = plan["name"]
        self.nodes: list[str] = list(plan["nodes"])
        options = plan.get("options") or {}
        self.command = [str(options.get("bin", ""))] + [str(a) for a in options.get("bin_args", [])]
        self.init_timeout = float(options.get("init_timeout", INIT_TIMEOUT))
        self.counts = Counts(os.path.join(plan["data_dir"], COUNTS_FILE))
        self.peers = {peer: PeerLink(self, peer, ports["peer"]) for peer, ports in plan["dial"].items()}
        self.clients: dict[str, asyncio.StreamWriter] = {}
        self.program: asyncio.subprocess.Process | None = None
        self.init_ok: asyncio.Future[dict[str, Any]] | None = None
        self.services = ServiceHost(plan["data_dir"], self.from_service) if self.node == self.nodes[0] else None

    # -- the program ---------------------------------------------------------------------
    async def start_program(self) -> None:
        if not self.command[0]:
            raise ProgramFailed("no program given (--bin)")
        try:
            self.program = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=None, cwd=self.plan["data_dir"], preexec_fn=_die_with_parent, limit=MAX_LINE)
        except FileNotFoundError:
            raise ProgramFailed(f"program not found: {self.command[0]}") from None
        except PermissionError:
            raise ProgramFailed(f"program is not executable: {self.command[0]}") from None
        except OSError as exc:
            raise ProgramFailed(f"cannot start {self.command[0]}: {exc.strerror}") from None
        log.info("%s: started %s (pid %d)", self.node, " ".join(self.command), self.program.pid)

    def to_program(self, line: bytes) -> None:
        assert self.program is not None and self.program.stdin is not None
        if not line.endswith(b"\n"):
            line += b"\n"
        try:
            self.program.stdin.write(line)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it is exiting; read_program says so

    async def initialise(self) -> None:
        self.init_ok = asyncio.get_running_loop().create_future()
        self.to_program(encode({"src": INIT_CLIENT, "dest": self.node, "body": {
            "type": "init", "msg_id": 1, "node_id": self.node, "node_ids": self.nodes}}))
        try:
            body = await asyncio.wait_for(asyncio.shield(self.init_ok), self.init_timeout)
        except asyncio.TimeoutError:
            raise ProgramFailed(f"never answered init within {self.init_timeout:g}s") from None
        if body.get("type") != "init_ok":
            raise ProgramFailed(f"answered init with {json.dumps(body)[:120]}, not init_ok")

    async def read_program(self) -> None:
        """Route every line the program prints; ProgramFailed on a line that is no message, or on exit."""
        assert self.program is not None and self.program.stdout is not None
        while True:
            try:
                line = await self.program.stdout.readline()
            except ValueError:
                raise ProgramFailed(f"printed a line longer than {MAX_LINE} bytes on stdout") from None
            if not line:
                code = await self.program.wait()
                when = "before answering init" if self.init_ok is not None and not self.init_ok.done() else ""
                raise ProgramFailed(f"exited {when} with status {code}".replace("  ", " "))
            if not line.strip():
                continue
            try:
                message = decode(line)
            except ProtocolError as exc:
                raise ProgramFailed(f"printed {shown(line)} on stdout, which is not a Maelstrom message "
                                    f"({exc})") from None
            self.route(message, line)

    def route(self, message: dict[str, Any], line: bytes) -> None:
        dest = message["dest"]
        if dest == INIT_CLIENT and self.init_ok is not None and not self.init_ok.done():
            self.init_ok.set_result(message["body"])
        elif dest in self.peers:
            self.peers[dest].send(line)
        elif is_client(dest) and dest in self.clients:
            self.clients[dest].write(line)
        elif dest in SERVICES:
            if self.services is not None:
                self.services.handle(message)
            else:
                self.peers[self.nodes[0]].send(line)  # the services live beside the first node
        else:
            self.counts.add("unroutable", dest)
            log.debug("%s: no route to %s", self.node, dest)

    def from_service(self, message: dict[str, Any]) -> None:
        """A service's answer: to our own program, or over the link to the node that asked."""
        if message["dest"] == self.node:
            self.to_program(encode(message))
        elif message["dest"] in self.peers:
            self.peers[message["dest"]].send(encode(message))

    # -- ports ---------------------------------------------------------------------------
    async def serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = json.loads(await reader.readline())  # {"link": "n2"}: the router at the other end
            link = str(hello["link"])
            writer.write(encode({"linked": self.node}))
            while line := await reader.readline():
                self.counts.add("received", link, len(line))
                if self.services is not None and self.services.handles(_dest(line)):
                    self.services.handle(decode(line))
                else:
                    self.to_program(line)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a line that is no message (ProtocolError is a ValueError) ends the connection
        finally:
            writer.close()

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mine: set[str] = set()
        try:
            while line := await reader.readline():
                try:
                    message = decode(line)
                except ProtocolError as exc:
                    log.warning("%s: a client sent a bad line (%s)", self.node, exc)
                    continue
                src = message["src"]
                self.clients[src] = writer
                mine.add(src)
                if message["dest"] == ROUTER:
                    writer.write(encode({"src": ROUTER, "dest": src, "body": {
                        "type": "status_ok", "in_reply_to": message["body"].get("msg_id"),
                        "node": self.node, "counts": self.counts.data}}))
                else:
                    self.to_program(line)
        except (OSError, ValueError):
            pass
        finally:
            for src in mine:
                if self.clients.get(src) is writer:
                    del self.clients[src]
            writer.close()

    async def save_counts(self) -> None:
        while True:
            await asyncio.sleep(COUNTS_EVERY)
            self.counts.save()

    async def run(self) -> None:
        await self.start_program()
        reading = asyncio.ensure_future(self.read_program())
        init = asyncio.ensure_future(self.initialise())
        await asyncio.wait({reading, init}, return_when=asyncio.FIRST_COMPLETED)
        if reading.done():
            init.cancel()
            reading.result()  # raises ProgramFailed
        if init.exception() is not None:
            reading.cancel()
        init.result()
        host, ports = self.plan["listen_host"], self.plan["ports"]
        await asyncio.start_server(self.serve_peer, host, ports["peer"], limit=MAX_LINE)
        tasks = [asyncio.ensure_future(link.run()) for link in self.peers.values()]
        tasks.append(asyncio.ensure_future(self.save_counts()))
        await asyncio.start_server(self.serve_client, host, ports["client"], limit=MAX_LINE)
        log.info("%s: ready", self.node)
        try:
            await reading
        finally:
            for task in tasks:
                task.cancel()

    def stop_program(self) -> None:
        if self.program is not None and self.program.returncode is None:
            try:
                self.program.kill()
            except ProcessLookupError:
                pass


def _dest(line: bytes) -> str:
    """The `dest` of a line from a peer router (only a service's name matters here)."""
    return str(decode(line)["dest"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the NodePlan as JSON")
    args = parser.parse_args(argv)
    plan = json.loads(args.config)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s router %(levelname)s %(message)s")
    router = Router(plan)
    loop = asyncio.new_event_loop()
    main_task = loop.create_task(router.run())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main_task.cancel)
    failure: ProgramFailed | None = None
    try:
        loop.run_until_complete(main_task)
    except ProgramFailed as exc:
        failure = exc
    except asyncio.CancelledError:
        pass
    finally:
        router.stop_program()
        _cancel_all(loop)
        if router.program is not None:
            loop.run_until_complete(asyncio.wait_for(router.program.wait(), STOP_WAIT))
        router.counts.save()
    if failure is not None:  # the last line of the node's log: what start_cluster shows the user
        print(f"maelstrom node {router.node} ({router.command[0]}): {failure}", file=sys.stderr, flush=True)
        return EXIT_BAD_PROGRAM
    return 0


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Every task cancelled and finished, so nothing complains about pending tasks at exit."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


if __name__ == "__main__":
    status = main()
    sys.stderr.flush()
    os._exit(status)  # no interpreter teardown: the line above stays the log's last
