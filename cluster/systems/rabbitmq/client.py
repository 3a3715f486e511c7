"""The RabbitMQ client: one AMQP 0-9-1 connection (pika) to one node, one operation at a time.

pika's SelectConnection is driven here with a deadline per operation (its blocking
adapter has no timeouts): `_run_until` polls the connection's I/O loop until the
answer came, the channel or connection was lost, or time ran out.

Operations of the `queue` workload (`key` is the queue, declared on first use as a
durable quorum queue, or a durable classic queue with queue-type=classic-mirrored: the
node's policy mirrors it) and what their outcomes mean:

    publish  basic.publish (mandatory, persistent, message_id = msg_id) on a channel in
             confirm mode: ok only after the broker's confirm (basic.ack); fail after a
             basic.nack, a basic.return (no queue took it) or when nothing was sent;
             info when the confirm never came (timeout, channel or connection lost).
             RabbitMQ does not deduplicate: a publish retried after `info` may be
             enqueued twice, and both copies delivered.
    consume  basic.get with manual ack: ok with {"msg_id", "body", "lease", "redelivered",
             "deliveries"} or None (get-empty); info when the answer never came (the
             broker may have handed the message out; it returns to the queue with the
             channel). "deliveries" is the broker's own count (1 + x-delivery-count).
    ack      basic.ack of the lease's delivery tag, then a round trip on the same channel
             (basic.qos): ok once the broker's channel has processed the ack; fail when
             the lease's channel is gone (RabbitMQ requeued the delivery) or the broker
             refused the tag; info when the round trip did not complete. AMQP 0-9-1 has no
             confirm for acks: RabbitMQ may still redeliver a message whose ack it
             processed (at-least-once), e.g. when the queue's leader changes meanwhile.
    depth    passive queue.declare: {"ready": message count, "leased": consumer count}.
             A channel holding unacked basic.get deliveries counts as a consumer of the
             quorum queue until it settles them, so "leased" is 0 exactly when no message
             is leased (it counts channels, not messages). RabbitMQ answers (0, 0) when the
             queue's leader does not answer within 250 ms: trust it right after a get-empty.
             A classic queue counts only basic.consume consumers: there "leased" is always
             0, and a drain relies on the harness having closed every other client's
             connection (which returns their leases) before it starts.

status() names a "leader" although a RabbitMQ cluster has none (each quorum queue
has its own): every node keeps a durable classic queue `faultbed.member.<node>` on
itself, and a node's "leader" is the first node in n1, n2, ... order whose queue it
can reach (n1's, if this node is clustered with a running n1). All nodes naming the
same leader therefore means they are one cluster; a node that formed a cluster of
its own, or cannot reach n1, names another.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Callable

import pika
import pika.exceptions
from pika import spec
from pika.adapters.select_connection import IOLoop
from pika.channel import Channel

from faultbed.cluster.systems import FAIL, INFO, OK, Outcome

log = logging.getLogger(__name__)
# pika logs every failed connection attempt as an error; here they are outcomes, not news.
logging.getLogger("pika").setLevel(logging.CRITICAL)

QUEUE_ARGUMENTS = {"quorum": {"x-queue-type": "quorum"}, "classic-mirrored": {"x-queue-type": "classic"}}
MEMBER_QUEUE_PREFIX = "faultbed.member."
MEMBER_QUEUE = {"x-queue-type": "classic"}
STACK_TIMEOUT_MARGIN = 5.0  # pika's handshake timeout, beyond ours: its abort trips its own assertion
CLOSE_GRACE = 0.5         # seconds a polite connection.close may take before the socket is dropped
PRECONDITION_FAILED = 406
NOT_FOUND = 404
GET_EMPTY = ("get-empty",)  # compared by identity: pika's frames do not compare with tuples


class _Lost(ConnectionError):
    """The channel or connection closed while an answer was awaited."""


class RabbitMQClient:
    """Client protocol implementation for RabbitMQ (see cluster.systems.Client)."""

    def __init__(self, address: tuple[str, int], node: str, timeout: float, queue_type: str = "quorum") -> None:
        self.address = address
        self.node = node
        self.queue_arguments = QUEUE_ARGUMENTS[queue_type]
        self.connect_timeout = timeout
        self._ioloop = IOLoop()
        self._ioloop.activate_poller()
        self._connection: pika.SelectConnection | None = None
        self._connection_error: BaseException | None = None
        self._channel: Channel | None = None
        self._channel_error: BaseException | None = None
        self._generation = 0              # which channel this is; leases name it
        self._declared: set[str] = set()  # queues declared on this connection
        self._next_publish_tag = 1
        self._confirms: dict[int, str] = {}
        self._publishing: dict[int, str] = {}  # delivery tag -> msg_id, until confirmed
        self._returned: set[str] = set()
        self._get_answer: tuple[Any, ...] | None = None
        self._closed = False
        try:
            self._open(time.monotonic() + timeout)  # OSError: the runner treats the node as down
        except pika.exceptions.AMQPError as exc:
            self.close()
            raise ConnectionError(f"connect to {node}: {_describe(exc)}") from exc
        except BaseException:
            self.close()
            raise

    # -- Client protocol -----------------------------------------------------
    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        queue = str(key)
        try:
            self._ready(queue, deadline)
        except (OSError, _Lost, pika.exceptions.AMQPError) as exc:
            return Outcome(FAIL, error=f"not sent: {_describe(exc)}", node=self.node)
        if f == "publish":
            return self._publish(queue, value, deadline)
        if f == "consume":
            return self._consume(queue, deadline)
        if f == "ack":
            return self._ack(value, deadline)
        if f == "depth":
            return self._depth(queue, deadline)
        return Outcome(FAIL, error=f"unknown operation {f!r}", node=self.node)

    def status(self, timeout: float) -> dict[str, Any]:
        """This node's view: node and "leader" (see the module doc). Raises OSError."""
        deadline = time.monotonic() + timeout
        try:
            self._ready(None, deadline)
            self._declare(MEMBER_QUEUE_PREFIX + self.node, deadline, arguments=MEMBER_QUEUE)
            leader = None
            for candidate in member_candidates(self.node):
                if candidate == self.node or self._queue_exists(MEMBER_QUEUE_PREFIX + candidate, deadline):
                    leader = candidate
                    break
        except (_Lost, pika.exceptions.AMQPError) as exc:
            raise ConnectionError(f"{self.node}: status: {_describe(exc)}") from exc
        return {"node": self.node, "leader": leader}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        connection, self._connection = self._connection, None
        self._channel = None
        if connection is not None and not connection.is_closed:
            self._close_connection(connection)
        self._ioloop.close()

    def __enter__(self) -> "RabbitMQClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations ----------------------------------------------------------
    def _publish(self, queue: str, value: Any, deadline: float) -> Outcome:
        msg_id = str(value["msg_id"])
        channel, generation = self._current_channel(), self._generation
        tag = self._next_publish_tag
        properties = pika.BasicProperties(message_id=msg_id, delivery_mode=2, content_type="application/json")
        try:
            channel.basic_publish("", queue, json.dumps(value).encode(), properties, mandatory=True)
        except pika.exceptions.AMQPError as exc:
            return Outcome(FAIL, error=f"not sent: {_describe(exc)}", node=self.node)
        self._next_publish_tag += 1
        self._publishing[tag] = msg_id
        try:
            self._run_until(lambda: tag in self._confirms, deadline, generation)
        except TimeoutError:
            return Outcome(INFO, error="no publisher confirm before the timeout", node=self.node)
        except _Lost as exc:
            return Outcome(INFO, error=f"no publisher confirm: {_describe(exc)}", node=self.node)
        confirm = self._confirms.pop(tag)
        if confirm == "nack":
            return Outcome(FAIL, error="nack", node=self.node)
        if msg_id in self._returned:
            self._returned.discard(msg_id)
            return Outcome(FAIL, error="returned: no queue took the message", node=self.node)
        return Outcome(OK, value, node=self.node)

    def _consume(self, queue: str, deadline: float) -> Outcome:
        channel, generation = self._current_channel(), self._generation
        self._get_answer = None
        try:
            channel.basic_get(queue, self._on_get_ok, auto_ack=False)
        except pika.exceptions.AMQPError as exc:
            return Outcome(FAIL, error=f"not sent: {_describe(exc)}", node=self.node)
        try:
            self._run_until(lambda: self._get_answer is not None, deadline, generation)
        except TimeoutError:
            return Outcome(INFO, error="no answer to basic.get before the timeout", node=self.node)
        except _Lost as exc:
            return Outcome(INFO, error=f"no answer to basic.get: {_describe(exc)}", node=self.node)
        answer, self._get_answer = self._get_answer, None
        assert answer is not None
        if answer is GET_EMPTY:
            return Outcome(OK, None, node=self.node)
        method, properties, body = answer
        return Outcome(OK, delivery_value(method, properties, body, generation), node=self.node)

    def _ack(self, value: Any, deadline: float) -> Outcome:
        generation, tag = parse_lease(value.get("lease") if isinstance(value, dict) else None)
        if generation != self._generation or self._channel is None:
            return Outcome(FAIL, error="lease lost: its channel closed and RabbitMQ requeued the delivery",
                           node=self.node)
        channel = self._channel
        done: list[bool] = []
        try:
            channel.basic_ack(tag)
            channel.basic_qos(prefetch_count=0, callback=lambda frame: done.append(True))
        except pika.exceptions.AMQPError as exc:
            return Outcome(FAIL, error=f"not sent: {_describe(exc)}", node=self.node)
        try:
            self._run_until(lambda: bool(done), deadline, generation)
        except TimeoutError:
            return Outcome(INFO, error="ack sent, no answer on its channel before the timeout", node=self.node)
        except _Lost as exc:
            refused = isinstance(exc.__cause__, pika.exceptions.ChannelClosedByBroker) \
                and exc.__cause__.reply_code == PRECONDITION_FAILED
            return Outcome(FAIL if refused else INFO, error=_describe(exc), node=self.node)
        return Outcome(OK, value, node=self.node)

    def _depth(self, queue: str, deadline: float) -> Outcome:
        try:
            frame = self._declare(queue, deadline, passive=True)
        except (TimeoutError, _Lost, pika.exceptions.AMQPError) as exc:
            return Outcome(FAIL, error=_describe(exc), node=self.node)
        return Outcome(OK, {"ready": frame.method.message_count, "leased": frame.method.consumer_count},
                       node=self.node)

    # -- connection, channel, queues -----------------------------------------
    def _open(self, deadline: float) -> None:
        """Connect (ConnectionError when refused, TimeoutError when slow) and open a channel."""
        answer: list[BaseException | None] = []
        parameters = pika.ConnectionParameters(
            host=self.address[0], port=self.address[1], credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1, retry_delay=0, heartbeat=0,
            socket_timeout=max(0.1, deadline - time.monotonic()),
            stack_timeout=max(0.1, deadline - time.monotonic()) + STACK_TIMEOUT_MARGIN)
        self._connection_error = None
        self._connection = pika.SelectConnection(
            parameters, on_open_callback=lambda connection: answer.append(None),
            on_open_error_callback=lambda connection, error: answer.append(error),
            on_close_callback=self._on_connection_closed, custom_ioloop=self._ioloop)
        self._run_until(lambda: bool(answer), deadline)
        if answer[0] is not None:
            self._connection = None
            raise ConnectionError(f"connect to {self.node}: {_describe(answer[0])}")
        self._declared.clear()
        self._open_channel(deadline)

    def _open_channel(self, deadline: float) -> None:
        assert self._connection is not None
        opened: list[Channel] = []
        confirming: list[bool] = []
        self._connection.channel(on_open_callback=opened.append)
        self._run_until(lambda: bool(opened), deadline)
        channel = opened[0]
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.add_callback(self._on_get_empty, [spec.Basic.GetEmpty], one_shot=False)
        channel.confirm_delivery(self._on_confirm, callback=lambda frame: confirming.append(True))
        self._channel, self._channel_error = channel, None
        self._generation += 1
        self._next_publish_tag = 1
        self._confirms.clear()
        self._publishing.clear()
        self._returned.clear()
        self._run_until(lambda: bool(confirming), deadline, self._generation)

    def _ready(self, queue: str | None, deadline: float) -> None:
        """Connection, channel and (when given) the queue declared; reconnects as needed."""
        if self._connection is None or not self._connection.is_open:
            self._drop_connection()
            self._open(deadline)
        elif self._channel is None or not self._channel.is_open:
            self._open_channel(deadline)
        if queue is not None and queue not in self._declared:
            self._declare(queue, deadline, arguments=self.queue_arguments)
            self._declared.add(queue)

    def _declare(self, queue: str, deadline: float, passive: bool = False,
                 arguments: dict[str, Any] | None = None) -> Any:
        """queue.declare (durable) and its declare-ok frame; _Lost when the broker closed the channel."""
        channel, generation = self._current_channel(), self._generation
        answer: list[Any] = []
        channel.queue_declare(queue, passive=passive, durable=True, arguments=None if passive else arguments,
                              callback=answer.append)
        self._run_until(lambda: bool(answer), deadline, generation)
        return answer[0]

    def _queue_exists(self, queue: str, deadline: float) -> bool:
        """Whether a passive declare finds `queue` (on a node that answers); reopens the channel it costs."""
        try:
            self._declare(queue, deadline, passive=True)
            return True
        except _Lost as exc:
            cause = exc.__cause__
            if isinstance(cause, pika.exceptions.ChannelClosedByBroker) and cause.reply_code == NOT_FOUND:
                self._open_channel(deadline)
                return False
            raise

    def _current_channel(self) -> Channel:
        if self._channel is None or not self._channel.is_open:
            raise _Lost(f"channel closed: {_describe(self._channel_error)}")
        return self._channel

    def _close_connection(self, connection: pika.SelectConnection) -> None:
        """connection.close, given CLOSE_GRACE to complete; then the socket is dropped.

        A connection still in its handshake (a broker too slow to answer before the connect
        timeout) is dropped at once, as if the broker had gone: pika 1.2's close() of an opening
        connection completes its connection workflow with the exception's class instead of an
        instance, and the I/O loop then fails an assertion (AssertionError: Expected self conn=...).
        pika's own stack timeout would do the same, so it is set beyond our deadline (see _open)."""
        try:
            if not (connection.is_open or connection.is_closing):
                raise TimeoutError("still opening")
            if not connection.is_closing:
                connection.close()
            self._run_until(lambda: bool(connection.is_closed), time.monotonic() + CLOSE_GRACE)
        except (TimeoutError, pika.exceptions.AMQPError):
            abandon(connection)
            try:
                self._run_until(lambda: bool(connection.is_closed), time.monotonic() + CLOSE_GRACE)
            except TimeoutError:
                log.warning("%s: connection did not close", self.node)

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            abandon(connection)  # completes in a later poll of the shared I/O loop

    def _run_until(self, done: Callable[[], bool], deadline: float, generation: int | None = None) -> None:
        """Poll I/O until `done()`; TimeoutError at the deadline, _Lost when the channel of
        `generation` (or the connection) closes first."""
        while not done():
            if generation is not None and (self._generation != generation or self._channel is None):
                error = self._channel_error or self._connection_error
                raise _Lost(_describe(error) if error else "channel closed") from error
            if self._connection is not None and self._connection.is_closed:
                raise _Lost(f"connection closed: {_describe(self._connection_error)}") from self._connection_error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timeout")
            wake = self._ioloop.call_later(remaining, _nothing)
            try:
                self._ioloop.poll()
                self._ioloop.process_timeouts()
            finally:
                self._ioloop.remove_timeout(wake)

    # -- pika callbacks --------------------------------------------------------
    def _on_connection_closed(self, connection: Any, error: BaseException) -> None:
        if connection is not self._connection:
            return  # an earlier connection, dropped already
        self._connection_error = error
        self._channel_error = self._channel_error or error
        self._channel = None

    def _on_channel_closed(self, channel: Channel, reason: BaseException) -> None:
        if channel is self._channel:
            self._channel, self._channel_error = None, reason
            self._declared.clear()  # a channel error may have come from a declare

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        kind = "ack" if isinstance(method, spec.Basic.Ack) else "nack"
        tags = [t for t in self._publishing if t <= method.delivery_tag] if method.multiple else [method.delivery_tag]
        for tag in tags:
            self._publishing.pop(tag, None)
            self._confirms[tag] = kind

    def _on_return(self, channel: Channel, method: Any, properties: Any, body: bytes) -> None:
        if properties.message_id:
            self._returned.add(str(properties.message_id))

    def _on_get_ok(self, channel: Channel, method: Any, properties: Any, body: bytes) -> None:
        self._get_answer = (method, properties, body)

    def _on_get_empty(self, frame: Any) -> None:
        self._get_answer = GET_EMPTY


def abandon(connection: pika.SelectConnection) -> None:
    """Drop a connection's socket now, open or still opening (the broker requeues what it held).

    pika has no public abort. Its teardown of a connection asserts that a reason was set
    (close() sets one; an aborted handshake completes later, in a poll of the I/O loop that the
    next connection shares, and fails `_on_stream_terminated()` expected self._error...).
    So the reason is set here, as close() would, before the stream is dropped."""
    if connection.is_closed:
        return
    if connection._error is None:  # noqa: SLF001
        connection._error = pika.exceptions.AMQPConnectionError("dropped by the client")  # noqa: SLF001
    connection._adapter_disconnect_stream()  # noqa: SLF001


def member_candidates(node: str) -> list[str]:
    """n1 .. node, for nodes named n<k>; else just the node itself."""
    match = re.fullmatch(r"n(\d+)", node)
    return [f"n{i}" for i in range(1, int(match.group(1)) + 1)] if match else [node]


def delivery_value(method: Any, properties: Any, body: bytes, generation: int) -> dict[str, Any]:
    """A consume's ok value: the message, its lease (channel generation and delivery tag), the broker's count."""
    try:
        message = json.loads(body)
    except ValueError:
        message = {"body": body.decode(errors="replace")}
    value: dict[str, Any] = {"msg_id": properties.message_id or message.get("msg_id"), "body": message.get("body"),
                             "lease": f"{generation}:{method.delivery_tag}", "redelivered": bool(method.redelivered)}
    count = (properties.headers or {}).get("x-delivery-count")
    if isinstance(count, int):
        value["deliveries"] = count + 1
    elif not method.redelivered:
        value["deliveries"] = 1
    return value


def parse_lease(lease: Any) -> tuple[int, int]:
    """(channel generation, delivery tag) of a lease; (-1, -1) when it is not one of ours."""
    try:
        generation, tag = str(lease).split(":")
        return int(generation), int(tag)
    except ValueError:
        return -1, -1


def _nothing() -> None:
    """A timer callback that only wakes the I/O loop at a deadline."""


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    if isinstance(exc, TimeoutError):
        return "timeout"
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
