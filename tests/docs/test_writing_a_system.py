"""docs/WRITING-A-SYSTEM.md's walk-through, executed as written.

Every `<!-- file: NAME -->` block is written to an empty directory, every `sh` block runs
there in order (bash -e, faultbed's bin on PATH), and every plain block right after an
`sh` block is the output the doc promises: each of its pieces between `...` must appear
in what the commands printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "WRITING-A-SYSTEM.md"
SECTION = "## Walk-through"
FENCE = re.compile(r"(?:<!-- file: (?P<file>[^ ]+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)


def walk_through() -> list[tuple[str, str | None, str]]:
    """(language, file name or None, body) of each fenced block in the walk-through section."""
    text = DOC.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return [(m["lang"], m["file"], m["body"]) for m in FENCE.finditer(text[start:end])]


def test_the_walk_through_has_a_file_and_runs_and_promises_outputs():
    blocks = walk_through()
    assert [name for _, name, _ in blocks if name] == ["mykv.toml"]
    assert sum(lang == "sh" for lang, _, _ in blocks) == 4
    assert sum(lang == "" for lang, _, _ in blocks) == 3


def test_walk_through_runs_as_written(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    last_output = None
    outputs = []
    for lang, name, body in walk_through():
        if name is not None:
            (tmp_path / name).write_text(body)
        elif lang == "sh":
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", body], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=240)
            last_output = proc.stdout + proc.stderr
            outputs.append(last_output)
            assert proc.returncode == 0, f"{body}\n-> exit {proc.returncode}\n{last_output}"
        elif lang == "" and last_output is not None:
            for line in body.splitlines():
                for piece in (part.strip() for part in line.split("...")):
                    assert piece in last_output, f"the doc promises {piece!r}; the commands printed:\n{last_output}"
            last_output = None
    typo, valid, buggy, replay = outputs
    assert "exit code 3" in typo and typo.count("\n") == 2, "one line, then the exit code"
    assert "verdict: valid" in valid
    assert "verdict: INVALID" in buggy and "exit code 1" in buggy
    assert "replay: schedule identical, operation plan identical" in replay
    assert (tmp_path / "store" / "latest" / "system.toml").is_file()
