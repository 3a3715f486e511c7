"""A small runtime for Maelstrom nodes (jepsen-io/maelstrom doc/protocol.md), Python standard library only.

Messages are JSON objects `{"src", "dest", "body"}`, one per line: read from stdin, written to stdout;
stderr is for logs. `init` is answered with `init_ok`; requests carry `msg_id`, replies `in_reply_to`.
Handlers and timers run under one lock, one at a time, so a node's state needs no other locking; a
handler never blocks: it replies at once or keeps the request and replies later.

These programs know nothing of faultbed: they are what a Maelstrom user would have written.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import threading
import time
from typing import Any, Callable

Body = dict[str, Any]
Message = dict[str, Any]

# Maelstrom's error codes that the nodes here use
TIMEOUT, NOT_SUPPORTED, TEMPORARILY_UNAVAILABLE, MALFORMED_REQUEST, CRASH = 0, 10, 11, 12, 13
KEY_DOES_NOT_EXIST, PRECONDITION_FAILED = 20, 22


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Node:
    """Reads messages, dispatches them to handlers by body type, sends and answers."""

    def __init__(self) -> None:
        self.node_id = ""
        self.node_ids: list[str] = []
        self.lock = threading.RLock()
        self._out = threading.Lock()
        self._ids = itertools.count(1)
        self._handlers: dict[str, Callable[[Message], None]] = {}
        self._callbacks: dict[int, tuple[float, Callable[[Message], None]]] = {}
        self._on_init: list[Callable[[], None]] = []
        self.handle("init", self._init)

    @property
    def peers(self) -> list[str]:
        return [n for n in self.node_ids if n != self.node_id]

    def majority(self) -> int:
        return len(self.node_ids) // 2 + 1

    def handle(self, type_: str, handler: Callable[[Message], None]) -> None:
        self._handlers[type_] = handler

    def on_init(self, hook: Callable[[], None]) -> None:
        self._on_init.append(hook)

    def every(self, seconds: float, task: Callable[[], None], jitter: float = 0.0) -> None:
        """Run `task` under the lock every `seconds` (plus up to `jitter`) once init is done."""
        def loop() -> None:
            while True:
                time.sleep(seconds + random.uniform(0, jitter))
                with self.lock:
                    try:
                        task()
                    except Exception as exc:  # a failing timer must not stop the node
                        log(f"{self.node_id}: timer {task.__name__} failed: {exc!r}")
        self.on_init(lambda: threading.Thread(target=loop, daemon=True).start())

    def send(self, dest: str, body: Body) -> None:
        line = json.dumps({"src": self.node_id, "dest": dest, "body": body})
        with self._out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def reply(self, request: Message, body: Body) -> None:
        body = dict(body, in_reply_to=request["body"].get("msg_id"))
        self.send(request["src"], body)

    def error(self, request: Message, code: int, text: str) -> None:
        self.reply(request, {"type": "error", "code": code, "text": text})

    def rpc(self, dest: str, body: Body, callback: Callable[[Message], None], timeout: float = 5.0) -> None:
        """Send a request; `callback` gets the reply (forgotten after `timeout` seconds)."""
        msg_id = next(self._ids)
        self._callbacks[msg_id] = (time.monotonic() + timeout, callback)
        self.send(dest, dict(body, msg_id=msg_id))

    def _init(self, message: Message) -> None:
        body = message["body"]
        self.node_id = str(body["node_id"])
        self.node_ids = [str(n) for n in body["node_ids"]]
        self.reply(message, {"type": "init_ok"})
        log(f"{self.node_id}: initialised, cluster {self.node_ids}")
        for hook in self._on_init:
            hook()

    def _dispatch(self, message: Message) -> None:
        body = message.get("body") or {}
        reply_to = body.get("in_reply_to")
        if reply_to is not None:
            _, callback = self._callbacks.pop(reply_to, (0.0, None))
            if callback is not None:
                callback(message)
            return
        handler = self._handlers.get(body.get("type"))
        if handler is None:
            self.error(message, NOT_SUPPORTED, f"unknown message type {body.get('type')!r}")
            return
        try:
            handler(message)
        except (KeyError, TypeError, ValueError) as exc:
            self.error(message, MALFORMED_REQUEST, f"bad request: {exc!r}")

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for msg_id in [i for i, (deadline, _) in self._callbacks.items() if deadline < now]:
            del self._callbacks[msg_id]

    def run(self) -> None:
        """Serve until stdin closes."""
        self.every(1.0, self._forget_expired)
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                log(f"{self.node_id}: not JSON: {line[:200]!r}")
                continue
            with self.lock:
                self._dispatch(message)
