"""The picture of a long history is bounded: a long illegal key shows its first illegal segment,
a long legal key is left out and counted (porcupine's drawing search needs n*n/8 bytes per key)."""

from __future__ import annotations

import re
from pathlib import Path

from bench.histories import Shape, generate
from faultbed.checkers.formats import import_faultbed
from faultbed.checkers.linearizable import check_history, check_operations
from faultbed.history import read_history

PICTURE_MAX_OPS = 10000  # checkers/porcupine/picture.go


def drawn_operations(html: Path) -> int:
    return len(re.findall(r'"Start":', html.read_text()))


def test_a_long_illegal_key_is_drawn_from_its_first_illegal_segment(tmp_path: Path) -> None:
    path = generate(Shape(24000, seed=3, keys=1, processes=2, broken=True), str(tmp_path / "history.jsonl"))
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
