"""Shards: a campaign (a suite's tests, a range of seeds) split into n deterministic parts.

Shard i of n (1-based, as a CI matrix counts) takes every n-th item of the campaign in a
fixed order, starting with the i-th: the n shards together take every item exactly once,
and each host or CI job computes its own share alone, with no coordinator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, TypeVar

from faultbed.errors import FaultbedError

T = TypeVar("T")
MAX_SHARDS = 10_000
_SHARD = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1 <= index <= count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, position: int) -> bool:
        """Whether the item at 0-based `position` of the campaign's fixed order is this shard's."""
        return position % self.count == self.index - 1

    def pick(self, items: Iterable[T]) -> list[T]:
        """This shard's items of `items` (already in the campaign's fixed order)."""
        return [item for position, item in enumerate(items) if self.takes(position)]


WHOLE = Shard(1, 1)


def parse_shard(text: str) -> Shard:
    """`I/N` as a Shard; FaultbedError (one line) for anything else."""
    match = _SHARD.fullmatch(text)
    if not match:
        raise FaultbedError(f"shard {text[:40]!r}: expected I/N, e.g. 1/3 (shard 1 of 3)")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise FaultbedError(f"shard {index}/{count}: the number of shards must be 1-{MAX_SHARDS}")
    if not 1 <= index <= count:
        raise FaultbedError(f"shard {index}/{count}: the shard must be 1-{count}")
    return Shard(index, count)
