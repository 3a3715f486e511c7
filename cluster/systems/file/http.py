"""The http client: one request template per operation, and rules that turn answers into outcomes.

    ok        status in `missing_status` (value null: no such key); or status in `ok_status`, no `error_field` in the JSON body, and `ok_if` (when given)
              truthy; the value is read from `value` (reads) or is the operation's own value
    fail      `ok_if` false (with `fail_error`, e.g. cas-mismatch); a read that went wrong in any
              way; nothing sent (connection refused); an error whose message is in
              `certain_failures` (the system says the write was never attempted)
    info      any other error or a timeout of a write: it may have taken effect
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests  # type: ignore[import]  # Debian ships no stubs

from faultbed.cluster.systems import FAIL, INFO, OK, Outcome
from faultbed.cluster.systems.file import schema, template
from faultbed.cluster.systems.file.jsonlines import uncertain

log = logging.getLogger(__name__)


class HttpError(Exception):
    """The system answered, with an error (status or error field)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class HttpClient:
    """Operations as HTTP requests to the node's client port; one keep-alive session."""

    def __init__(self, spec: schema.Client, address: tuple[str, int], node: str, timeout: float) -> None:
        self.spec = spec
        self.base = f"http://{address[0]}:{address[1]}"
        self.node = node
        self.connect_timeout = timeout
        self.session = requests.Session()

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        operation = self.spec.operations.get(f)
        if operation is None:
            return Outcome(FAIL, error=f"unknown operation {f!r} (the system file describes "
                                       f"{', '.join(self.spec.operations)})", node=self.node)
        values = {"key": key, "value": value, "node": self.node, "from": None, "to": None}
        if isinstance(value, (list, tuple)) and len(value) == 2:
            values["from"], values["to"] = value
        try:
            answer = self.call(operation.request, values, timeout)
        except requests.ConnectionError as exc:
            if never_sent(exc):
                return Outcome(FAIL, error="connect: no connection (refused or timed out)", node=self.node)
            return Outcome(uncertain(f), error=short(exc), node=self.node)
        except requests.Timeout:
            return Outcome(uncertain(f), error="timeout", node=self.node)
        except HttpError as exc:
            if exc.status in operation.missing_status:
                return Outcome(OK, None, node=self.node)
            certain = f in ("read", "read-ledger") or str(exc) in self.spec.certain_failures
            return Outcome(FAIL if certain else INFO, error=str(exc), node=self.node)
        except (requests.RequestException, ValueError) as exc:
            return Outcome(uncertain(f), error=short(exc), node=self.node)
        if operation.ok_if is not None and not template.extract(answer, operation.ok_if):
            return Outcome(FAIL, error=operation.fail_error, node=self.node)
        try:
            result = template.extract(answer, operation.value) if operation.value is not None else value
        except (ValueError, TypeError) as exc:
            return Outcome(uncertain(f), error=f"cannot read the value: {exc}", node=self.node)
        return Outcome(OK, result, node=self.node)

    def call(self, request: schema.HttpRequest, values: dict[str, Any], timeout: float) -> Any:
        """Send one templated request; the JSON answer (None for an empty body), or HttpError."""
        deadline = time.monotonic() + timeout
        remaining = max(0.01, deadline - time.monotonic())
        body = None if request.body is None else template.render_tree(request.body, values)
        response = self.session.request(
            request.method, self.base + template.render(request.path, values),
            data=None if body is None else (body if isinstance(body, str) else json.dumps(body)),
            headers={"Content-Type": "application/json"} if body is not None else None,
            timeout=(min(self.connect_timeout, remaining), remaining))
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        error = answer.get(self.spec.error_field) if isinstance(answer, dict) else None
        if response.status_code not in self.spec.ok_status or error is not None:
            message = answer.get(self.spec.message_field) if isinstance(answer, dict) else None
            raise HttpError(str(message or error or f"HTTP {response.status_code}"), response.status_code)
        return answer

    def close(self) -> None:
        self.session.close()


def never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was refused or never completed, so the request never left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return type(inner).__name__ in ("NewConnectionError", "ConnectTimeoutError")


def short(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
