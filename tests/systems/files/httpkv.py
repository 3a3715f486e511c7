"""A tiny single-node key-value server over HTTP, for the system file tests.

    python httpkv.py --name n1 --host 127.0.0.1 --port 7001

    GET  /health               200 "ok"
    GET  /leader               {"leader": "<this node's name>"}
    GET  /kv/KEY               {"value": v} (200) or {"error": "not-found"} (404)
    PUT  /kv/KEY  {"value"}    {"ok": true}
    POST /cas/KEY {"from","to"}  {"ok": true|false}; a key named "boom" answers 500 {"error", "message"}
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATE: dict[str, Any] = {}
LOCK = threading.Lock()
NAME = "n1"


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def do_GET(self) -> None:
        if self.path == "/health":
            return self._reply(200, "ok")
        if self.path == "/leader":
            return self._reply(200, {"leader": NAME})
        key = self.path.removeprefix("/kv/")
        with LOCK:
            if key not in STATE:
                return self._reply(404, {"error": "not-found"})
            return self._reply(200, {"value": STATE[key]})

    def do_PUT(self) -> None:
        key = self.path.removeprefix("/kv/")
        with LOCK:
            STATE[key] = self._body()["value"]
        self._reply(200, {"ok": True})

    def do_POST(self) -> None:
        key = self.path.removeprefix("/cas/")
        body = self._body()
        if key == "boom":
            return self._reply(500, {"error": "internal", "message": "boom: disk on fire"})
        with LOCK:
            if STATE.get(key) != body["from"]:
                return self._reply(200, {"ok": False})
            STATE[key] = body["to"]
        self._reply(200, {"ok": True})

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    global NAME
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    NAME = args.name
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"httpkv {NAME} serving on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
