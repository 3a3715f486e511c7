"""A router's link to a peer is up only once the peer's router answers through the real Toxiproxy.

Toxiproxy accepts a connection before it knows whether the peer listens, and closes it when the
peer's port refuses (a peer whose program is still starting). Messages sent meanwhile must wait
for the link, not be lost: a Maelstrom network loses messages only to partitions.
"""

from __future__ import annotations

import asyncio
import json
import types

from faultbed.cluster.ports import PortReservation
from faultbed.cluster.systems.maelstrom.router import Counts, PeerLink
from faultbed.cluster.toxiproxy import ToxiproxyServer

HOST = "127.0.0.1"


def test_messages_sent_while_the_peer_is_not_yet_listening_arrive_once_it_is(server: ToxiproxyServer, tmp_path):
    with PortReservation(HOST) as reservation:
        listen, upstream = reservation.take(2)
        server.client.create_proxy("n1-n2-peer", f"{HOST}:{listen}", f"{HOST}:{upstream}")
        try:
            router = types.SimpleNamespace(node="n1", counts=Counts(str(tmp_path / "counts.json")))
            received, unsent = asyncio.run(_exchange(router, listen, upstream))
        finally:
            server.client.delete_proxy("n1-n2-peer")
    assert received == [{"m": i} for i in range(10)], received
    assert unsent == 0


async def _exchange(router: types.SimpleNamespace, listen: int, upstream: int) -> tuple[list[dict], int]:
    link = PeerLink(router, "n2", f"{HOST}:{listen}")  # type: ignore[arg-type]
    running = asyncio.ensure_future(link.run())
    for i in range(10):  # the peer is not listening: the proxy accepts each try and closes it
        link.send(json.dumps({"m": i}).encode() + b"\n")
        await asyncio.sleep(0.05)
    received: list[dict] = []
    done = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = json.loads(await reader.readline())
        assert hello == {"link": "n1"}, hello
        writer.write(b'{"linked":"n2"}\n')
        while line := await reader.readline():
            received.append(json.loads(line))
            if len(received) == 10:
                done.set()

    listening = await asyncio.start_server(peer, HOST, upstream)
    try:
        await asyncio.wait_for(done.wait(), 10)
    except asyncio.TimeoutError:
        pass
    finally:
        running.cancel()
        listening.close()
    return received, sum(router.counts.data["unsent"].values())
