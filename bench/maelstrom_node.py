#!/usr/bin/env python3
"""The program `make bench` runs behind the Maelstrom routers (a plain Maelstrom node, stdlib only).

blast {count, to}: send `count` ping messages to node `to` as fast as it can; `to` answers the
last with done, and then blast_ok goes back to the client.
pingpong {count, to}: `count` sequential round trips ping -> pong with `to`; pingpong_ok carries
the seconds they took (measured here, so the client's own path is not in it).
"""

import json
import sys
import time

node = ""
client_waiting: dict = {}
started = 0.0
remaining = 0


def out(dest, body):
    sys.stdout.write(json.dumps({"src": node, "dest": dest, "body": body}) + "\n")


for line in sys.stdin:
    message = json.loads(line)
    body = message["body"]
    kind = body["type"]
    if kind == "init":
        node = body["node_id"]
        out(message["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif kind == "blast":
        client_waiting["blast"] = (message["src"], body["msg_id"])
        for seq in range(body["count"]):
            out(body["to"], {"type": "ping", "seq": seq, "last": seq == body["count"] - 1})
    elif kind == "ping":
        if body.get("last"):
            out(message["src"], {"type": "done"})
        if "round" in body:
            out(message["src"], {"type": "pong", "round": body["round"]})
    elif kind == "done":
        client, msg_id = client_waiting.pop("blast")
        out(client, {"type": "blast_ok", "in_reply_to": msg_id})
    elif kind == "pingpong":
        client_waiting["pingpong"] = (message["src"], body["msg_id"], body["to"])
        remaining = body["count"]
        started = time.monotonic()
        out(body["to"], {"type": "ping", "round": remaining})
    elif kind == "pong":
        remaining -= 1
        client, msg_id, to = client_waiting["pingpong"]
        if remaining > 0:
            out(to, {"type": "ping", "round": remaining})
        else:
            del client_waiting["pingpong"]
            out(client, {"type": "pingpong_ok", "in_reply_to": msg_id, "seconds": time.monotonic() - started})
    sys.stdout.flush()
