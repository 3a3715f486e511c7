"""The first anomalous operation of an illegal history, and the smallest prefix that shows it.

A history cut at time T keeps the operations invoked before T; those that
completed after T become pending (an unknown outcome, which the model accepts
either way). Cutting later only adds constraints, so "illegal when cut at T" is
monotone in T and a binary search over completion times finds the earliest
completion that makes the history illegal: the first anomalous operation. Its
prefix is what a person should look at first.

Each probe is a search, and a prefix's pending operations can make it far dearer
than the whole history's (many clients on one key): a probe that cannot say
(unknown: its time or memory ran out) ends the search with the earliest anomaly
proven so far, which is then an anomaly, not necessarily the first (`proven_first`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from faultbed.checkers.formats import ROW_KEY, OpRow, same_key
from faultbed.checkers.result import Valid

CALL, RETURN, F, INPUT, OUTPUT, ORIGIN = 1, 2, 3, 5, 6, 7
KEY = ROW_KEY
PARTITIONED_MODELS = ("register", "cas-register", "kv")


@dataclass(frozen=True)
class FirstAnomaly:
    row: OpRow             # the operation whose completion made the history illegal
    prefix: list[OpRow]    # the history cut just after it (the smallest illegal prefix)
    proven_first: bool = True  # False: a probe of an earlier cut could not say (its budget ran out)

    def to_json(self, time_origin_ns: int) -> dict[str, Any]:
        return {
            "time_ms": round((self.row[RETURN] - time_origin_ns) / 1e6, 3),
            "f": self.row[F], "key": self.row[KEY], "value": self.row[INPUT], "output": self.row[OUTPUT],
            "origin": self.row[ORIGIN], "prefix_ops": len(self.prefix), "proven_first": self.proven_first,
        }


def cut(rows: Sequence[OpRow], at: int) -> list[OpRow]:
    """The history as it stood at time `at`: later completions become pending."""
    kept = []
    for row in rows:
        if row[CALL] > at:
            continue
        if row[RETURN] is not None and row[RETURN] > at:
            row = (*row[:RETURN], None, row[F], row[KEY], row[INPUT], None, *row[ORIGIN:])
        kept.append(row)
    return kept


def first_anomaly(rows: Sequence[OpRow], model: str, key: Any, probe: Callable[[list[OpRow]], Valid],
                  illegal_at: int | None = None) -> FirstAnomaly | None:
    """Binary search for the earliest completion after which `rows` (of `key`, illegal as a whole:
    the verdict said so) are illegal. `probe` checks a cut (True, False or unknown); `illegal_at`
    is a completion time known illegal without a search (an impossible read's), where it starts."""
    if model in PARTITIONED_MODELS:
        rows = [r for r in rows if same_key(r[KEY], key)]
    completions = sorted({r[RETURN] for r in rows if r[RETURN] is not None})
    if not completions:
        return None
    # invariant: illegal when cut at completions[high]. The last completion's cut is the whole key
    # but for operations called after it, which never returned: the verdict's search covered it.
    low, high = 0, len(completions) - 1
    if illegal_at is not None and illegal_at in completions:
        high = completions.index(illegal_at)
    proven = True
    while low < high:
        middle = (low + high) // 2
        valid = probe(cut(rows, completions[middle]))
        if valid is False:
            high = middle
        elif valid is True:
            low = middle + 1
        else:
            proven = False
            break
    at = completions[high]
    anomalous = next(r for r in rows if r[RETURN] == at)
    return FirstAnomaly(anomalous, cut(rows, at), proven)
