"""The table of faultbed's entry points kept in the user's cache directory (faultbed/plugins.py):
it answers as reading the distributions does, and a change to what is installed is seen at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faultbed import plugins

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    plugins._entry_points.cache_clear()
    yield home
    plugins._entry_points.cache_clear()


def _tables(home: Path) -> list[Path]:
    return sorted((home / "faultbed").glob("entry-points-*.json"))


def test_the_kept_table_is_what_the_distributions_say(cache_home: Path) -> None:
    fresh = plugins._read_entry_points()
    assert any(name == "register" and origin == plugins.BUILT_IN for name, _, origin in fresh["faultbed.workloads"])
    first = plugins._entry_points()
    assert first == fresh
    [table] = _tables(cache_home)
    plugins._entry_points.cache_clear()
    assert plugins._entry_points() == fresh  # read back from the file
    assert json.loads(table.read_text())["key"] == plugins._installation_key()


def test_a_damaged_table_is_read_again_from_the_distributions(cache_home: Path) -> None:
    plugins._entry_points()
    [table] = _tables(cache_home)
    key = json.loads(table.read_text())["key"]
    for damage in ("", "[]", json.dumps({"key": key, "groups": {"faultbed.systems": [["only-two", "x"]]}}),
                   json.dumps({"key": key, "groups": {"faultbed.systems": [[1, 2, 3]]}})):
        table.write_text(damage)
        plugins._entry_points.cache_clear()
        assert plugins._entry_points() == plugins._read_entry_points()


def test_installing_a_distribution_changes_the_key(tmp_path: Path, cache_home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution appears on the path with a faultbed entry point: the next start sees it."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = plugins._installation_key()
    assert "late-kv" not in {p[0] for p in plugins._entry_points().get("faultbed.systems", [])}
    info = site / "late_kv-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late-kv\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[faultbed.systems]\nlate-kv = late_kv:SYSTEM\n")
    assert plugins._installation_key() != before
    plugins._entry_points.cache_clear()
    assert ("late-kv", "late_kv:SYSTEM", "entry point (late-kv 1.0)") in plugins._entry_points()["faultbed.systems"]
    # rewritten in place (a reinstall of the same version): seen too
    os.utime(info / "entry_points.txt", ns=(1, 1))
    changed = plugins._installation_key()
    (info / "entry_points.txt").write_text("[faultbed.systems]\nlate-kv = late_kv:OTHER\n")
    assert plugins._installation_key() != changed
    plugins._entry_points.cache_clear()
    assert ("late-kv", "late_kv:OTHER", "entry point (late-kv 1.0)") in plugins._entry_points()["faultbed.systems"]


def test_a_read_only_cache_directory_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a directory")
    plugins._entry_points.cache_clear()
    try:
        assert plugins._entry_points() == plugins._read_entry_points()
    finally:
        plugins._entry_points.cache_clear()


def test_faultbed_list_is_the_same_with_and_without_the_table(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "c")}
    run = [sys.executable, "-m", "faultbed", "list"]
    first = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and "register" in first.stdout
    assert list((tmp_path / "c" / "faultbed").glob("entry-points-*.json"))
