"""Queue invariants in the manner of Jepsen's total-queue, for a leasing broker.

Operations (`key` is the queue): `publish` (invoke `msg_id`, `producer`; retried on
timeout), `consume` (ok value `{"msg_id", "body", "lease"}` and optionally the broker's
`deliveries` count, or None when nothing is ready), `ack` (invoke `msg_id`), and after
the heal a drain whose operations carry `final: true`, ending with a `depth` read (ok
value `{"ready": 0, "leased": 0}`).

A message counts as delivered when an `ack` of it succeeded; an `info` ack may
have removed it too. Against that:

- lost: a publish acknowledged ok whose message was never acked (nor possibly acked);
- duplicated: a message acked ok more than once;
- unexpected: a message consumed that no producer ever published;
- reordered: one producer's message acknowledged before another of its messages was
  published, yet first handed out after that later one was, although nothing can have
  leased it in between (FIFO per producer);
- recovered: a publish never acknowledged whose message was delivered (not an error).

Lost messages are only certain once the queue was drained; otherwise the verdict is
"unknown" (unless another anomaly already makes it invalid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from faultbed.checkers.anomaly_time import Moment, Recorded, first_anomaly_details, recorded, time_origin
from faultbed.checkers.result import UNKNOWN, Result, Valid, count_summary
from faultbed.history import operation_value, pair_into

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

CHECKER = "queue"
PUBLISH, CONSUME, ACK, DEPTH = "publish", "consume", "ack", "depth"
MAX_EXAMPLES = 50


@dataclass(slots=True)
class QueueOp(Recorded):
    """One operation as the checker needs it, made as the history is read (its events are not kept).

    `value` is as Operation.value has it (the completion's value when it has one, else the
    invocation's), read once here: `first_delivery` is a delivery's own word on whether it is the
    message's first (its value's `deliveries` == 1; None when it does not say) and `drains` whether
    the operation is a final depth read that found the queue empty."""

    queue: str = ""
    msg_id: str | None = None
    producer: Any = None  # as the publish names it (None: not named)
    first_delivery: bool | None = None
    drains: bool = False


def queue_ops(events: Iterable[dict[str, Any]]) -> list[QueueOp]:
    """The history's client operations in invocation order, as pair_operations pairs them."""
    return pair_into(events, _queue_op)


def _queue_op(invoke: dict[str, Any], completion: dict[str, Any] | None) -> QueueOp:
    f, value = invoke["f"], operation_value(invoke, completion)
    op = QueueOp(*recorded(invoke, completion), queue=str(invoke.get("key") or ""),
                 msg_id=message_id(f, invoke, completion), producer=invoke.get("producer"))
    if isinstance(value, dict):
        if "deliveries" in value:
            op.first_delivery = bool(value["deliveries"] == 1)
        op.drains = (f == DEPTH and op.type == "ok" and bool(invoke.get("final")) and value.get("ready", 1) == 0
                     and value.get("leased", 1) == 0)
    return op


@dataclass(slots=True)
class MessageFate:
    """What the history says happened to one message id in one queue."""

    queue: str
    msg_id: str
    producer: Any = None
    publishes: list[QueueOp] = field(default_factory=list)
    deliveries: list[QueueOp] = field(default_factory=list)  # ok consumes that returned it
    acks: list[QueueOp] = field(default_factory=list)

    def acknowledged_publish(self) -> QueueOp | None:
        return next((op for op in self.publishes if op.type == "ok"), None)

    def acked(self) -> list[QueueOp]:
        return [op for op in self.acks if op.type == "ok"]

    def possibly_acked(self) -> bool:
        return any(op.type == "info" for op in self.acks)


def message_id(f: str, invoke: dict[str, Any], completion: dict[str, Any] | None) -> str | None:
    """The message id an operation is about: the invoke's field, its value's, or a delivery's."""
    for source in (invoke, invoke.get("value"), completion and completion.get("value")):
        if isinstance(source, dict) and source.get("msg_id") is not None:
            return str(source["msg_id"])
    if f == ACK and isinstance(invoke.get("value"), str):
        return str(invoke["value"])
    return None


def producer_of(op: QueueOp, msg_id: str) -> Any:
    """The producer named in the publish, else the msg_id's prefix before its last '-'."""
    return op.producer if op.producer is not None else msg_id.rsplit("-", 1)[0]


def collect_fates(ops: list[QueueOp]) -> dict[tuple[str, str], MessageFate]:
    """Every message id's publishes, deliveries and acks, keyed by (queue, msg_id)."""
    fates: dict[tuple[str, str], MessageFate] = {}
    for op in ops:
        if op.f not in (PUBLISH, CONSUME, ACK):
            continue
        msg_id = op.msg_id
        if msg_id is None or (op.f == CONSUME and op.type != "ok"):
            continue
        fate = fates.setdefault((op.queue, msg_id), MessageFate(op.queue, msg_id))
        if op.f == PUBLISH:
            fate.producer = producer_of(op, msg_id)
            fate.publishes.append(op)
        elif op.f == CONSUME:
            fate.deliveries.append(op)
        else:
            fate.acks.append(op)
    return fates


def drained_queues(ops: list[QueueOp]) -> set[str]:
    """Queues a final `depth` read found empty: nothing ready and nothing leased."""
    return {op.queue for op in ops if op.drains}


def fate_anomalies(fates: dict[tuple[str, str], MessageFate]) -> dict[str, list[dict[str, Any]]]:
    """Lost (candidates), duplicated, unexpected and recovered messages."""
    found: dict[str, list[dict[str, Any]]] = {"lost": [], "duplicated": [], "unexpected": [], "recovered": []}
    for fate in fates.values():
        acked = fate.acked()
        published = fate.acknowledged_publish()
        about = {"queue": fate.queue, "msg_id": fate.msg_id}
        if published is not None and not acked and not fate.possibly_acked():
            found["lost"].append({**about, "published_by": published.index,
                                  "deliveries": [op.index for op in fate.deliveries]})
        if len(acked) > 1:
            found["duplicated"].append({**about, "acked_by": [op.index for op in acked],
                                        "deliveries": [op.index for op in fate.deliveries]})
        if not fate.publishes and (fate.deliveries or acked):
            found["unexpected"].append({**about, "deliveries": [op.index for op in fate.deliveries]})
        if fate.publishes and published is None and fate.deliveries:
            found["recovered"].append({**about, "publishes": [op.index for op in fate.publishes]})
    return found


def unknown_consumes(ops: list[QueueOp]) -> dict[str, list[int]]:
    """Per queue, the invoke indexes of consumes whose outcome is unknown (they may have leased)."""
    found: dict[str, list[int]] = {}
    for op in ops:
        if op.f == CONSUME and op.type == "info":
            found.setdefault(op.queue, []).append(op.index)
    return found


def reorderings(fates: dict[tuple[str, str], MessageFate], ops: list[QueueOp]) -> list[dict[str, Any]]:
    """Per producer and queue: a later message first handed out before an earlier, ready one."""
    streams: dict[tuple[Any, str], list[MessageFate]] = {}
    for fate in fates.values():
        if fate.acknowledged_publish() is not None and fate.deliveries:
            streams.setdefault((fate.producer, fate.queue), []).append(fate)
    hidden_leases = unknown_consumes(ops)
    found = []
    for (producer, queue), stream in streams.items():
        stream.sort(key=lambda fate: fate.acknowledged_publish().done)  # type: ignore[union-attr]
        latest: MessageFate | None = None  # of the messages so far, the one first asked for the latest
        for later in stream:
            if latest is not None and _handed_out_before(later, latest, hidden_leases.get(queue, [])):
                found.append({"producer": producer, "queue": queue, "earlier": latest.msg_id,
                              "later": later.msg_id, "later_delivered_by": later.deliveries[0].index,
                              "earlier_first_delivered_by": latest.deliveries[0].index})
            if latest is None or later.deliveries[0].index > latest.deliveries[0].index:
                latest = later
    return found


def _handed_out_before(later: MessageFate, earlier: MessageFate, hidden_leases: list[int]) -> bool:
    """True when `earlier` was acknowledged before `later` was first published, `later` was
    delivered before `earlier` was first asked for, and `earlier` was certainly ready then."""
    published = earlier.acknowledged_publish()
    delivered_at = min((op.done for op in later.deliveries), default=None)
    if published is None or delivered_at is None:
        return False
    if published.done > later.publishes[0].index:
        return False
    if earlier.deliveries[0].index < delivered_at:
        return False
    return _never_leased_before(earlier, delivered_at, hidden_leases)


def _never_leased_before(fate: MessageFate, moment: int, hidden_leases: list[int]) -> bool:
    """Whether nothing can have leased `fate`'s message before its first observed delivery.

    When that delivery reports `deliveries: 1`, the broker says it is the first. Otherwise
    a consume whose answer was lost, invoked before `moment`, may have leased the message
    (its effect can come at any time after its invocation).
    """
    first = fate.deliveries[0].first_delivery
    if first is not None:
        return first
    return not any(index < moment for index in hidden_leases)


def anomaly_moments(fates: dict[tuple[str, str], MessageFate], anomalies: dict[str, list[dict[str, Any]]],
                    lost: list[dict[str, Any]], duplicates_allowed: bool) -> list[Moment]:
    """For each anomaly that makes a history invalid, the operation whose completion made it a
    fact: a duplicate's second successful ack, a lost message's acknowledged publish, an
    unexpected message's first delivery, a reordered one's first delivery."""
    def fate(item: dict[str, Any]) -> MessageFate:
        return fates[(item["queue"], item["msg_id"])]

    moments: list[Moment] = []
    if not duplicates_allowed:
        moments.extend(Moment("duplicated", item["msg_id"], fate(item).acked()[1]) for item in anomalies["duplicated"])
    for item in lost:
        published = fate(item).acknowledged_publish()
        if published is not None:
            moments.append(Moment("lost", item["msg_id"], published))
    moments.extend(Moment("unexpected", item["msg_id"], fate(item).deliveries[0])
                   for item in anomalies["unexpected"] if fate(item).deliveries)
    for item in anomalies["reordered"]:
        later = fates.get((item["queue"], item["later"]))
        if later is not None and later.deliveries:
            moments.append(Moment("reordered", item["later"], later.deliveries[0]))
    return moments


def summarize(name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{name}_count": len(items), name: items[:MAX_EXAMPLES]}


def check(events: Sequence[dict[str, Any]], spec: "TestSpec | None" = None, duplicates_allowed: bool = False) -> Result:
    """Judge a history of publish, consume, ack and final drain operations.

    `duplicates_allowed` is for at-least-once queues: duplicates are still listed, but
    only lost, unexpected and reordered messages make the history invalid.
    """
    ops = queue_ops(events)
    fates = collect_fates(ops)
    anomalies = fate_anomalies(fates)
    anomalies["reordered"] = reorderings(fates, ops)
    drained = drained_queues(ops)
    lost = [item for item in anomalies["lost"] if item["queue"] in drained]
    unconsumed = [item for item in anomalies["lost"] if item["queue"] not in drained]
    details: dict[str, Any] = {
        "published_attempts": sum(len(f.publishes) for f in fates.values()),
        "acknowledged_publishes": sum(1 for f in fates.values() if f.acknowledged_publish() is not None),
        "delivered": sum(1 for f in fates.values() if f.acked()),
        "redelivered": sum(1 for f in fates.values() if len(f.deliveries) > 1),
        "drained_queues": sorted(drained),
    }
    details.update(summarize("lost", lost))
    for name in ("duplicated", "unexpected", "reordered", "recovered"):
        details.update(summarize(name, anomalies[name]))
    details.update(summarize("unconsumed", unconsumed))
    duplicated = anomalies["duplicated"] and not duplicates_allowed
    details["duplicates_allowed"] = duplicates_allowed
    details.update(first_anomaly_details(anomaly_moments(fates, anomalies, lost, duplicates_allowed),
                                         time_origin(ops)))
    valid: Valid = not (lost or duplicated or anomalies["unexpected"] or anomalies["reordered"])
    if valid and unconsumed:
        details["error"] = "queue never drained: acknowledged messages still unconsumed may or may not be lost"
        valid = UNKNOWN
    return Result(CHECKER, valid, details, _summary(details))


def _summary(details: dict[str, Any]) -> str:
    counts = count_summary(details, ("lost", "duplicated", "unexpected", "reordered", "unconsumed"))
    if counts and details["duplicates_allowed"] and details.get("duplicated_count"):
        counts += " (duplicates allowed: at-least-once)"
    error = details.get("error", "")
    first = f"first anomaly at {details['first_anomaly_ms'] / 1000:.2f} s" if "first_anomaly_ms" in details else ""
    return "; ".join(p for p in (counts, first, error) if p) or f"{details['delivered']} messages delivered"


class QueueChecker:
    """Acknowledged messages are delivered, once, in order; duplicates are allowed when the
    run's system says its delivery is at-least-once (its traits)."""

    name = CHECKER
    description = "no acknowledged message lost, duplicated, unexpected or reordered"

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        from faultbed.cluster.systems import AT_LEAST_ONCE, load_system

        at_least_once = load_system(spec.system).traits.delivery == AT_LEAST_ONCE
        return check(history, spec, duplicates_allowed=at_least_once)


QUEUE = QueueChecker()
