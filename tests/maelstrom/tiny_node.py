#!/usr/bin/env python3
"""A tiny Maelstrom node for faultbed's own router tests (the real subjects are in tests/maelstrom_nodes).

echo, generate, broadcast/read (flooding to every node, no retries), and lin-kv through a
primary: n1 keeps the map, every other node forwards the client's request to n1 and relays
its answer (`--via lin-kv`, seq-kv or lww-kv: every node forwards to that service instead). `--misbehave exit|silent|garbage|crash-later` makes it a bad program on purpose.
"""

import json
import sys
import time

mode = sys.argv[sys.argv.index("--misbehave") + 1] if "--misbehave" in sys.argv else ""
via = sys.argv[sys.argv.index("--via") + 1] if "--via" in sys.argv else "n1"  # or a service: lin-kv, ...
node_id = ""
next_id = 0
kv: dict = {}
messages: set = set()
pending: dict = {}  # our msg_id to n1 -> (client, client msg_id)


def send(dest, body):
    global next_id
    next_id += 1
    body.setdefault("msg_id", next_id)
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()
    return body["msg_id"]


def reply(message, body):
    body["in_reply_to"] = message["body"]["msg_id"]
    send(message["src"], body)


def apply_kv(body):
    key = str(body.get("key"))
    if body["type"] == "read":
        if key not in kv:
            return {"type": "error", "code": 20, "text": "not found"}
        return {"type": "read_ok", "value": kv[key]}
    if body["type"] == "write":
        kv[key] = body["value"]
        return {"type": "write_ok"}
    if key not in kv:
        return {"type": "error", "code": 20, "text": "not found"}
    if kv[key] != body["from"]:
        return {"type": "error", "code": 22, "text": f"expected {body['from']}, had {kv[key]}"}
    kv[key] = body["to"]
    return {"type": "cas_ok"}


if mode == "exit":
    sys.exit(4)
if mode == "garbage":
    print("hello, I am not JSON", flush=True)
if mode == "silent":
    time.sleep(3600)

for line in sys.stdin:
    message = json.loads(line)
    body = message["body"]
    kind = body["type"]
    if kind == "init":
        node_id = body["node_id"]
        print(f"tiny node {node_id} up", file=sys.stderr, flush=True)
        reply(message, {"type": "init_ok"})
    elif kind == "echo":
        reply(message, {"type": "echo_ok", "echo": body["echo"]})
    elif kind == "generate":
        reply(message, {"type": "generate_ok", "id": f"{node_id}-{next_id}"})
    elif kind == "topology":
        reply(message, {"type": "topology_ok"})
    elif kind == "broadcast":
        if body["message"] not in messages:
            messages.add(body["message"])
            for peer in [f"n{i}" for i in range(1, 10)]:
                if peer != node_id:
                    send(peer, {"type": "gossip", "message": body["message"]})
        reply(message, {"type": "broadcast_ok"})
    elif kind == "gossip":
        messages.add(body["message"])
    elif kind in ("read", "write", "cas") and "key" not in body:
        reply(message, {"type": "read_ok", "messages": sorted(messages)})
    elif kind in ("read", "write", "cas"):
        if node_id == via:
            reply(message, apply_kv(body))
        else:
            forwarded = send(via, {"type": kind, **{k: v for k, v in body.items() if k not in ("type", "msg_id")}})
            pending[forwarded] = (message["src"], body["msg_id"])
    elif "in_reply_to" in body and body["in_reply_to"] in pending:
        client, client_msg = pending.pop(body["in_reply_to"])
        answer = {k: v for k, v in body.items() if k not in ("msg_id", "in_reply_to")}
        send(client, {**answer, "in_reply_to": client_msg})
    if mode == "crash-later" and next_id > 20:
        print("{oops", flush=True)
