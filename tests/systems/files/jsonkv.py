"""A tiny single-node key-value server speaking json-lines, for the system file tests.

    python jsonkv.py --name n1 --host 127.0.0.1 --port 7001

Requests {"id", "f", "key", "value"} -> {"id", "type", "value", "error"}; f is read, write,
cas [from, to] or status (-> {"leader": this node}). A key named "hang" is never answered.
"""

from __future__ import annotations

import argparse
import json
import socketserver
import threading
from typing import Any

STATE: dict[str, Any] = {}
LOCK = threading.Lock()
NAME = "n1"


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    f, key, value = request.get("f"), request.get("key"), request.get("value")
    if key == "hang":
        return None
    with LOCK:
        if f == "status":
            return {"type": "ok", "value": {"leader": NAME, "node": NAME}}
        if f == "read":
            return {"type": "ok", "value": STATE.get(key)}
        if f == "write":
            STATE[key] = value
            return {"type": "ok", "value": value}
        if f == "cas":
            if STATE.get(key) != value[0]:
                return {"type": "fail", "error": "cas-mismatch"}
            STATE[key] = value[1]
            return {"type": "ok", "value": value}
    return {"type": "fail", "error": f"unknown-op {f!r}"}


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            request = json.loads(line)
            reply = answer(request)
            if reply is not None:
                self.wfile.write((json.dumps({"id": request.get("id"), **reply}) + "\n").encode())
                self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    global NAME
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    NAME = args.name
    with Server((args.host, args.port), Handler) as server:
        print(f"jsonkv {NAME} serving on {args.host}:{args.port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
