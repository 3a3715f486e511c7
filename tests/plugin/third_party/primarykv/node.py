"""One primarykv node. The first node is the primary: it applies every request under one lock and
appends it to a log in its data dir (fsync) before answering, so it survives SIGKILL. The others
forward each request to the primary's peer port, through the address faultbed's mesh gives them."""

import json
import os
import socket
import socketserver
import sys
import threading

PRIMARY_TIMEOUT = 1.0


class Store:
    def __init__(self, path):
        self.data = {}
        self.lock = threading.Lock()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.endswith("\n"):  # a torn last line was never acknowledged
                        key, value = json.loads(line)
                        self.data[key] = value
        self.log = open(path, "a", encoding="utf-8")

    def apply(self, f, key, value):
        with self.lock:
            current = self.data.get(key)
            if f == "read":
                return {"type": "ok", "value": current}
            if f == "cas" and current != value[0]:
                return {"type": "fail", "error": f"value is {current}"}
            new = value[1] if f == "cas" else value
            self.log.write(json.dumps([key, new]) + "\n")
            self.log.flush()
            os.fsync(self.log.fileno())
            self.data[key] = new
            return {"type": "ok", "value": value}


def forward(address, request):
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=PRIMARY_TIMEOUT) as sock:
            sock.sendall((json.dumps(request) + "\n").encode())
            line = sock.makefile("rb").readline()
    except OSError as exc:
        line = b""
        error = str(exc)
    else:
        error = "primary closed the connection"
    if line:
        return json.loads(line)
    # a read has no effect either way; a write may or may not have happened
    return {"type": "fail" if request["f"] == "read" else "info", "error": error}


def main():
    plan = json.loads(sys.argv[1])
    primary = plan["nodes"][0]
    store = Store(os.path.join(plan["data_dir"], "kv.log")) if plan["name"] == primary else None

    def answer(request):
        if request["f"] == "status":
            return {"node": plan["name"], "leader": primary}
        if store is not None:
            return store.apply(request["f"], request["key"], request["value"])
        return forward(plan["dial"][primary]["peer"], request)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write((json.dumps(answer(json.loads(line))) + "\n").encode())

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    servers = [Server((plan["listen_host"], plan["ports"][port]), Handler) for port in ("peer", "client")]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{plan['name']} up (primary {primary})", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
