"""`faultbed run` of the idempotency workload (raftkv) and the queue workload (broker) on the local backend.

Each is valid when the system is correct (one seed, never retried) and finds a planted
bug. A detection over seeds prints the rate it saw and asserts a threshold under the
rate measured with `python -m bench.campaign` (numbers in each test), so a checker
that stops seeing the bug fails while one unlucky seed does not.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import detection_rate, short_run

pytestmark = pytest.mark.integration

# 10 s, 3 nodes, partitions and kills every 1.5 s: long enough for retried requests and lost acks
MIX = ("--nemesis", "partition,kill", "--time-limit", "10")
IDEMPOTENCY = ("--workload", "idempotency", *MIX)
QUEUE = ("--system", "broker", "--workload", "queue", *MIX)


def checker_verdicts(run_dir: str) -> dict[str, object]:
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as fh:
        return {r["checker"]: r["valid"] for r in json.load(fh)["results"]}


def test_correct_raftkv_under_partitions_and_kills_applies_each_request_once(tmp_path):
    run_dir = short_run(str(tmp_path / "store"), *IDEMPOTENCY, expect_exit=0)
    verdicts = checker_verdicts(run_dir)
    assert verdicts.get("idempotency") is True and verdicts.get("stats") is True, verdicts


def test_correct_broker_queue_under_partitions_and_kills_loses_and_duplicates_nothing(tmp_path):
    run_dir = short_run(str(tmp_path / "store"), *QUEUE, expect_exit=0)
    verdicts = checker_verdicts(run_dir)
    assert verdicts.get("queue") is True and verdicts.get("stats") is True, verdicts


def test_raftkv_without_deduplication_is_caught_applying_a_retried_request_twice(tmp_path):
    # measured: NODEDUPE_RATE
    rate, lines = detection_rate(str(tmp_path), *IDEMPOTENCY, "--bug", "no-dedupe", seeds=(11, 12, 13))
    assert rate >= 2 / 3, "\n".join(lines)
    for line in lines:
        if "INVALID" in line:
            assert checker_verdicts(line.rsplit(" ", 1)[1]).get("idempotency") is False, line


def test_a_broker_that_acks_before_replicating_is_caught_losing_messages(tmp_path):
    # measured: ABR_RATE
    rate, lines = detection_rate(str(tmp_path), *QUEUE, "--bug", "ack-before-replicate", seeds=(11, 12, 13))
    assert rate >= 2 / 3, "\n".join(lines)
    for line in lines:
        if "INVALID" in line:
            assert checker_verdicts(line.rsplit(" ", 1)[1]).get("queue") is False, line
