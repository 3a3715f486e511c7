"""Run every benchmark in turn; each prints its own numbers."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("harness", "raftkv", "ready", "checker", "queue_check", "docker", "disk", "maelstrom")


def main(names: list[str]) -> int:
    failed = 0
    for name in names or BENCHMARKS:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                continue
            raise
        print(f"== {name}", flush=True)
        failed += int(module.main() != 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
