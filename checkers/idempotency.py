"""Idempotency: every request key takes effect exactly once, however often it was retried.

The history holds `apply` operations (invoke `idempotency_key` and `attempt`; an ok
returns the ledger position) and, after the faults are healed, `read-ledger`
operations whose ok value is the whole ledger. Against the last ledger read:

- duplicated: a key applied more than once (whether or not it was acknowledged);
- lost: a key acknowledged ok but absent from the ledger;
- applied_after_fail: a key whose every attempt failed (certainly no effect) yet applied;
- unexpected: a ledger entry whose key no client ever sent;
- misplaced: an acknowledged position that holds another key in the ledger;
- mismatched: retries of one key acknowledged with different results (positions).

An `info` attempt may or may not have taken effect, so a key never acknowledged may
be applied once or not at all. With no successful ledger read the verdict is
"unknown" unless a mismatch already proves the history invalid.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from faultbed.checkers.anomaly_time import Moment, Recorded, first_anomaly_details, recorded, time_origin
from faultbed.checkers.result import UNKNOWN, Result, Valid, count_summary
from faultbed.history import operation_value, pair_into

if TYPE_CHECKING:
    from faultbed.spec import TestSpec

CHECKER = "idempotency"
APPLY, READ_LEDGER = "apply", "read-ledger"
MAX_EXAMPLES = 50


@dataclass(slots=True)
class Attempt(Recorded):
    """One operation as the checker needs it, made as the history is read (its events are not kept):
    `key` the idempotency key an `apply` carried, `value` an ok operation's (as Operation.value
    has it: the completion's when it has one, else the invocation's; None for the others)."""

    key: str | None = None
    value: Any = None


def _attempt(invoke: dict[str, Any], completion: dict[str, Any] | None) -> Attempt:
    attempt = Attempt(*recorded(invoke, completion), key=idempotency_key(invoke) if invoke["f"] == APPLY else None)
    if attempt.type == "ok":
        attempt.value = operation_value(invoke, completion)
    return attempt


@dataclass(frozen=True)
class KeyAttempts:
    """Every `apply` attempt made for one idempotency key, in invocation order."""

    key: str
    ops: tuple[Attempt, ...]

    def of_type(self, type_: str) -> list[Attempt]:
        return [op for op in self.ops if op.type == type_]

    def indexes(self, ops: Iterable[Attempt] | None = None) -> list[Any]:
        return [op.index for op in (self.ops if ops is None else ops)]


def idempotency_key(invoke: dict[str, Any]) -> str | None:
    """The key an `apply` carried: the invoke's field, else the one inside its value."""
    key = invoke.get("idempotency_key")
    if key is None and isinstance(invoke.get("value"), dict):
        key = invoke["value"].get("idempotency_key")
    return None if key is None else str(key)


def ledger_key(entry: Any) -> str:
    """The idempotency key of one ledger entry: {"idempotency_key": k, ...}, [k, payload] or k."""
    if isinstance(entry, dict):
        return str(entry.get("idempotency_key"))
    if isinstance(entry, (list, tuple)) and entry:
        return str(entry[0])
    return str(entry)


def group_attempts(ops: list[Attempt]) -> dict[str, KeyAttempts]:
    """`apply` operations grouped by idempotency key, keys in first-attempt order."""
    grouped: dict[str, list[Attempt]] = {}
    for op in ops:
        if op.key is not None:
            grouped.setdefault(op.key, []).append(op)
    return {key: KeyAttempts(key, tuple(attempts)) for key, attempts in grouped.items()}


def final_ledger(ops: list[Attempt]) -> tuple[list[Any], Attempt] | None:
    """The last successful ledger read's entries and its operation, or None."""
    reads = [op for op in ops if op.f == READ_LEDGER and op.type == "ok" and isinstance(op.value, list)]
    if not reads:
        return None
    return list(reads[-1].value), reads[-1]


def mismatched_results(attempts: dict[str, KeyAttempts]) -> list[dict[str, Any]]:
    """Keys whose ok attempts did not all return the first success's result."""
    found = []
    for key, group in attempts.items():
        oks = group.of_type("ok")
        if any(op.value != oks[0].value for op in oks[1:]):
            found.append({"key": key, "results": [{"op": op.index, "value": op.value} for op in oks]})
    return found


def ledger_anomalies(attempts: dict[str, KeyAttempts], ledger: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Duplicated, lost, applied-after-fail, misplaced and unexpected keys, judged against the ledger."""
    applied = Counter(ledger_key(entry) for entry in ledger)
    positions: dict[str, list[int]] = {}
    for position, entry in enumerate(ledger):
        positions.setdefault(ledger_key(entry), []).append(position)
    found: dict[str, list[dict[str, Any]]] = {
        "duplicated": [], "lost": [], "applied_after_fail": [], "unexpected": [], "misplaced": []}
    for key, group in attempts.items():
        oks = group.of_type("ok")
        times = applied.get(key, 0)
        if times > 1:
            found["duplicated"].append({"key": key, "times": times, "ledger_positions": positions[key],
                                        "acknowledged": bool(oks), "ops": group.indexes()})
        elif times == 0 and oks:
            found["lost"].append({"key": key, "acknowledged_by": group.indexes(oks), "ops": group.indexes()})
        elif times == 1 and all(op.type == "fail" for op in group.ops):
            found["applied_after_fail"].append({"key": key, "ops": group.indexes()})
        if times:
            found["misplaced"].extend(misplaced_results(key, oks, ledger))
    for key in applied:
        if key not in attempts:
            found["unexpected"].append({"key": key, "times": applied[key], "ledger_positions": positions[key]})
    return found


def misplaced_results(key: str, oks: list[Attempt], ledger: list[Any]) -> list[dict[str, Any]]:
    """Acknowledgements whose result, a ledger position, does not hold `key` (other results are skipped)."""
    found = []
    for op in oks:
        position = op.value
        if not isinstance(position, int) or isinstance(position, bool):
            continue
        holds = ledger_key(ledger[position]) if 0 <= position < len(ledger) else None
        if holds != key:
            found.append({"key": key, "op": op.index, "position": position, "holds": holds})
    return found


def anomaly_moments(attempts: dict[str, KeyAttempts], anomalies: dict[str, list[dict[str, Any]]],
                    mismatched: list[dict[str, Any]], ledger_read: Attempt | None) -> list[Moment]:
    """For each anomaly, the operation whose completion made it a fact: for a key applied n
    times, the n-th attempt that may have taken effect; for a lost or misplaced one, its
    acknowledgement; for a mismatch, the first differing acknowledgement; after every failed
    attempt, the last; an unexpected entry, the ledger read that showed it."""
    by_index = {op.index: op for group in attempts.values() for op in group.ops}
    moments: list[Moment] = []
    for item in anomalies.get("duplicated", []):
        group = attempts[item["key"]]
        effectful = [op for op in group.ops if op.type != "fail"] or list(group.ops)
        moments.append(Moment("duplicated", item["key"], effectful[min(item["times"], len(effectful)) - 1]))
    for item in anomalies.get("lost", []):
        moments.append(Moment("lost", item["key"], by_index[item["acknowledged_by"][0]]))
    for item in anomalies.get("applied_after_fail", []):
        moments.append(Moment("applied_after_fail", item["key"], attempts[item["key"]].ops[-1]))
    for item in anomalies.get("misplaced", []):
        moments.append(Moment("misplaced", item["key"], by_index[item["op"]]))
    for item in mismatched:
        first, *later = item["results"]
        differing = next(r for r in later if r["value"] != first["value"])
        moments.append(Moment("mismatched", item["key"], by_index[differing["op"]]))
    if ledger_read is not None:
        moments.extend(Moment("unexpected", item["key"], ledger_read) for item in anomalies.get("unexpected", []))
    return moments


def summarize(name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{name}_count": len(items), name: items[:MAX_EXAMPLES]}


def check(events: Sequence[dict[str, Any]], spec: "TestSpec | None" = None) -> Result:
    """Judge a history of `apply` attempts and final `read-ledger` operations."""
    ops = pair_into(events, _attempt)
    attempts = group_attempts(ops)
    mismatched = mismatched_results(attempts)
    details: dict[str, Any] = {
        "keys_attempted": len(attempts),
        "keys_acknowledged": sum(1 for g in attempts.values() if g.of_type("ok")),
        "attempts": sum(len(g.ops) for g in attempts.values()),
        "retried_keys": sum(1 for g in attempts.values() if len(g.ops) > 1),
    }
    details.update(summarize("mismatched", mismatched))
    ledger = final_ledger(ops)
    origin = time_origin(ops)
    valid: Valid
    if ledger is None:
        details["error"] = "no successful read-ledger: cannot tell what was applied"
        valid = False if mismatched else UNKNOWN
        details.update(first_anomaly_details(anomaly_moments(attempts, {}, mismatched, None), origin))
        return Result(CHECKER, valid, details, _summary(details))
    entries, read = ledger
    details.update({"ledger_read": read.index, "ledger_length": len(entries)})
    anomalies = ledger_anomalies(attempts, entries)
    for name, items in anomalies.items():
        details.update(summarize(name, items))
    details.update(first_anomaly_details(anomaly_moments(attempts, anomalies, mismatched, read), origin))
    valid = not mismatched and not any(anomalies.values())
    return Result(CHECKER, valid, details, _summary(details))


def _summary(details: dict[str, Any]) -> str:
    counts = count_summary(details, ("mismatched", "lost", "duplicated", "applied_after_fail", "unexpected",
                                     "misplaced"))
    error = details.get("error", "")
    first = f"first anomaly at {details['first_anomaly_ms'] / 1000:.2f} s" if "first_anomaly_ms" in details else ""
    return "; ".join(p for p in (counts, first, error) if p) or f"{details['keys_acknowledged']} keys acknowledged"


class IdempotencyChecker:
    """Every acknowledged apply is in the final ledger exactly once, at the position it was told."""

    name = CHECKER
    description = "acknowledged applies appear exactly once in the final ledger, where they were told"

    def check(self, history: Sequence[dict[str, Any]], spec: "TestSpec", out_dir: str | None) -> Result:
        return check(history, spec)


IDEMPOTENCY = IdempotencyChecker()
