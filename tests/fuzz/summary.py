"""Sum up a fuzz run: `python -m tests.fuzz.summary FILE` (FILE from FAULTBED_FUZZ_REPORT)."""

from __future__ import annotations

import collections
import json
import sys


def main(path: str) -> None:
    by_test: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            by_test[row["test"]][row["category"]] += 1
    total: collections.Counter[str] = collections.Counter()
    for test, counts in sorted(by_test.items()):
        total.update(counts)
        print(f"{test:24} {sum(counts.values()):6} tried  {dict(counts)}")
    print(f"{'all':24} {sum(total.values()):6} tried  {dict(total)}")


if __name__ == "__main__":
    main(sys.argv[1])
