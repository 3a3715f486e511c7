"""The stats checker does not let a run pass whose cluster never came back after the final heal."""

from __future__ import annotations

from faultbed.checkers.stats import check_stats


def _op(index: int, process: int, kind: str) -> dict:
    return {"index": index, "time": index, "type": kind, "process": process, "f": "read", "key": "k", "value": None}


def _history(ready: bool, final_ok: bool) -> list[dict]:
    events = [_op(0, 0, "invoke"), _op(1, 0, "ok"),
              {"index": 2, "time": 2, "type": "info", "process": "nemesis", "f": "heal", "value": "healed",
               "ready": ready},
              _op(3, 1_000_000, "invoke"), _op(4, 1_000_000, "ok" if final_ok else "fail")]
    return events


def test_never_recovered_without_any_later_success_is_unknown():
    result = check_stats(_history(ready=False, final_ok=False))
    assert result.valid == "unknown" and result.details["never_recovered"] is True
    assert "never recovered" in result.summary


def test_recovered_or_answering_after_the_heal_is_valid():
    assert check_stats(_history(ready=True, final_ok=False)).valid is True
    assert check_stats(_history(ready=False, final_ok=True)).valid is True
