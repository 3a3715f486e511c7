"""The picture of a long history is bounded: a long illegal key shows its first illegal segment,
a long legal key is left out and counted (porcupine's drawing search needs n*n/8 bytes per key)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from bench.histories import Shape, generate
from faultbed.checkers.formats import import_faultbed
from faultbed.checkers.linearizable import check_history, check_operations
from faultbed.history import read_history

PICTURE_MAX_OPS = 10000  # checkers/porcupine/picture.go


def drawn_operations(html: Path) -> int:
    return len(re.findall(r'"Start":', html.read_text()))


def test_a_long_illegal_key_is_drawn_from_its_first_illegal_segment(tmp_path: Path) -> None:
    # a stale read: only a search finds it (an impossible read is drawn as the next test shows)
    path = generate(Shape(24000, seed=3, keys=1, processes=2, broken=True, anomaly="stale"),
                    str(tmp_path / "history.jsonl"))
    html = tmp_path / "picture.html"
    result = check_history(read_history(path), "kv", visualize=str(html))
    assert result.valid is False
    assert result.details["first_anomaly"]["prefix_ops"] > PICTURE_MAX_OPS  # the prefix alone is too long
    assert result.details["visualization"] == str(html)
    text = html.read_text()
    assert "as the earlier part ends" in text  # the segment starts from the carried state
    assert 0 < text.count('"Start":') <= PICTURE_MAX_OPS + 400  # operations, plus a few annotations


def test_a_long_legal_key_is_left_out_of_the_picture_and_counted(tmp_path: Path) -> None:
    path = generate(Shape(24000, seed=4, keys=1, processes=2), str(tmp_path / "history.jsonl"))
    html = tmp_path / "picture.html"
    result = check_operations(import_faultbed(path).ops, "kv", visualize=str(html), always_visualize=True)
    assert result.valid is True
    assert result.details["picture_skipped"] == 1
    assert result.details["visualization"] == str(html)
    assert '"Start":' not in html.read_text() or drawn_operations(html) < 100


def test_a_hot_key_with_an_impossible_read_is_invalid_and_drawn_within_the_time_given(tmp_path: Path) -> None:
    """Twenty clients on one key and a read of a value nobody wrote: porcupine's search of that key
    ran out of 12 GB after 160 s (verdict unknown). The read is found without a search; the search
    for an earlier anomaly and both pictures stay within the check's time; the pictures show the
    read and the operations overlapping it."""
    path = generate(Shape(6000, seed=1, keys=1, processes=20, broken=True), str(tmp_path / "history.jsonl"))
    quick = check_operations(import_faultbed(path).ops, "kv", timeout=5, memory_limit_mb=2048)
    assert quick.valid is False  # not unknown: no search needed
    assert [(r["key"], r["value"]) for r in quick.details["impossible_reads"]] == [("k0", -1)]
    assert "read(\"k0\") saw -1, which nothing called before it returned wrote" in quick.summary
    html = tmp_path / "picture.html"
    started = time.monotonic()
    result = check_history(read_history(path), "kv", timeout=6, visualize=str(html))
    assert time.monotonic() - started < 6 * 2 + 5  # the verdict and the full picture, then at most 6 s more
    assert result.valid is False
    first = result.details["first_anomaly"]
    assert (first["f"], first["output"]) == ("read", -1)
    for picture in (html, tmp_path / "picture-full.html"):
        text = picture.read_text()
        assert text.count('"Description":"read(k0) -\\u003e -1"') == 1
        assert 1 < drawn_operations(picture) <= 40  # the read and the few overlapping it, not 6,000
