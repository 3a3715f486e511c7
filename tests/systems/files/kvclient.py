"""A process client for httpkv.py, as a user might write one in any language: JSON lines on stdin/stdout.

    python kvclient.py --server 127.0.0.1:7001 [--stale]

A request for the key "hang" is never answered (faultbed must give up, call it info and
start a new program); a request for the key "die" makes the program exit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def call(server: str, method: str, path: str, body: Any, timeout: float) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{server}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def perform(server: str, request: dict[str, Any]) -> dict[str, Any]:
    f, key, value, timeout = request["f"], request["key"], request.get("value"), request.get("timeout", 1.0)
    if key == "hang":
        time.sleep(3600)
    if key == "die":
        sys.exit(7)
    if f == "read":
        status, body = call(server, "GET", f"/kv/{key}", None, timeout)
        return {"type": "ok", "value": body["value"] if status == 200 else None}
    if f == "write":
        call(server, "PUT", f"/kv/{key}", {"value": value}, timeout)
        return {"type": "ok", "value": value}
    if f == "cas":
        status, body = call(server, "POST", f"/cas/{key}", {"from": value[0], "to": value[1]}, timeout)
        if status != 200:
            return {"type": "info", "error": f"HTTP {status}"}
        return {"type": "ok", "value": value} if body["ok"] else {"type": "fail", "error": "cas-mismatch"}
    return {"type": "fail", "error": f"unknown operation {f!r}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--node", default="")
    parser.add_argument("--nodes", default="")
    args = parser.parse_args()
    print(f"kvclient for {args.node} of {args.nodes} started", file=sys.stderr, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = perform(args.server, request)
        except urllib.error.URLError as exc:
            refused = isinstance(exc.reason, ConnectionRefusedError)  # nothing was sent: certainly no effect
            reply = {"type": "fail" if refused or request["f"] == "read" else "info", "error": str(exc.reason)}
        print(json.dumps({"id": request.get("id"), **reply}), flush=True)


if __name__ == "__main__":
    main()
