"""A third party's plugin, as an outside user would ship it: its own package in a temporary directory,
installed (editable) into a throwaway venv next to faultbed, registers a system and a fault kind only
through entry points (and a checker with a workload that lists it). `faultbed list` shows them;
`faultbed run` plans, runs, heals, draws, checks and replays them on real node processes and the real
Toxiproxy; `faultbed check RUN_DIR` re-runs the plugin's checker. No faultbed file is edited."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = Path(__file__).resolve().parent / "third_party"
PLUGIN_ORIGIN = "entry point (primarykv-faultbed 0.3.1)"
SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 240

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("third-party-venv")]  # one venv


def _call(argv: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _tracked_changes() -> str:
    return _ok(_call(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], 30))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (system site packages) with faultbed and the plugin installed editable."""
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.fail(f"{SYSTEM_PYTHON} is needed to make a throwaway venv")
    root = tmp_path_factory.mktemp("third-party")
    plugin = root / "primarykv-faultbed"
    shutil.copytree(PLUGIN_SOURCE, plugin, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = root / "venv"
    _ok(_call([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", str(env)], INSTALL_TIMEOUT))
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
           "--no-index", "-e"]
    _ok(_call(pip + [str(REPO)], INSTALL_TIMEOUT))
    _ok(_call(pip + [str(plugin)], INSTALL_TIMEOUT))
    return env


def test_faultbed_list_shows_the_plugins_system_and_fault_kind_with_their_origin(venv: Path) -> None:
    listing = json.loads(_ok(_call([str(venv / "bin" / "faultbed"), "list", "--json"], 60)))
    systems = {row["name"]: row for row in listing["systems"]}
    faults = {row["name"]: row for row in listing["faults"]}
    assert systems["primarykv"]["origin"] == PLUGIN_ORIGIN
    assert systems["primarykv"]["description"].startswith("primary-copy KV")
    assert faults["slow-node"]["origin"] == PLUGIN_ORIGIN
    assert faults["slow-node"]["description"].startswith("400 ms of latency")
    assert systems["raftkv"]["origin"] == faults["kill"]["origin"] == "built-in"
    checkers = {row["name"]: row for row in listing["checkers"]}
    workloads = {row["name"]: row for row in listing["workloads"]}
    assert checkers["final-reads-agree"]["origin"] == workloads["primarykv-register"]["origin"] == PLUGIN_ORIGIN
    help_text = _ok(_call([str(venv / "bin" / "faultbed"), "run", "--help"], 60))
    assert "slow-node" in help_text and "slow-primary" in help_text, "the plugin's kind and alias are in --help"


def _events(run_dir: Path) -> list[dict[str, Any]]:
    with open(run_dir / "history.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_faultbed_run_uses_the_plugins_system_and_fault_kind_end_to_end(venv: Path, tmp_path: Path) -> None:
    before = _tracked_changes()
    faultbed = str(venv / "bin" / "faultbed")
    store = tmp_path / "store"
    run = _call([faultbed, "run", "--system", "primarykv", "--workload", "primarykv-register",
                 "--nemesis", "slow-node,slow-primary,kill",
                 "--time-limit", "8", "--nemesis-interval", "2", "--rate", "40", "--concurrency", "4",
                 "--keys", "3", "--seed", "11", "--store", str(store), "--quiet"], RUN_TIMEOUT, cwd=tmp_path)
    assert run.returncode == 0, f"a correct system must be valid (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    run_dir = Path(os.path.realpath(store / "latest"))
    schedule = json.loads((run_dir / "schedule.json").read_text())
    assert schedule["faults"] == ["slow-node", "slow-primary", "kill"]
    planned = [e for e in schedule["events"] if e["action"] == "start" and e["fault"] == "slow-node"]
    assert planned and all(len(e["params"]["nodes"]) == 1 for e in planned), "the plugin's plan is in schedule.json"
    events = [e for e in _events(run_dir) if e["process"] == "nemesis"]
    slow = [e for e in events if e["f"] == "start-slow-node" and "error" not in e]
    assert slow and all(e["color"] == "#7fc97f" for e in slow), "executed, with the kind's colour"
    assert {e["fault"] for e in slow} == {"slow-node", "slow-primary"}, "the alias runs the same kind"
    assert any(e["f"] == "stop-slow-node" and e["value"] == "fast again" for e in events)
    assert events[-1]["f"] == "heal" and events[-1]["ready"] is True
    results = json.loads((run_dir / "results.json").read_text())
    assert results["valid"] is True and results["counts"]["ok"] > 20
    assert 'class="swatch" style="background:#7fc97f"' in (run_dir / "report.html").read_text(), "drawn"
    verdicts = {r["checker"]: (r["valid"], r["summary"]) for r in results["results"]}
    assert verdicts["final-reads-agree"] == (True, "3 keys agree"), "the plugin's checker judged the run"
    assert set(verdicts) == {"linearizable", "final-reads-agree", "stats"}

    check = _call([faultbed, "check", str(run_dir)], 120, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "linearizable: valid" in check.stdout and "final-reads-agree: valid (3 keys agree)" in check.stdout, \
        "faultbed check re-runs every checker of the run's workload, the plugin's too"

    replay = _call([faultbed, "replay", str(run_dir), "--quiet"], RUN_TIMEOUT, cwd=tmp_path)
    assert replay.returncode == 0, f"replay exited {replay.returncode}:\n{replay.stdout}\n{replay.stderr}"
    assert _tracked_changes() == before, "no faultbed file was edited"


def test_the_venv_is_not_the_projects(venv: Path) -> None:
    """The plugin is seen only where it is installed: the project's own interpreter does not know it."""
    listing = json.loads(_ok(_call([sys.executable, "-m", "faultbed", "list", "--json", "systems"], 60)))
    assert "primarykv" not in {row["name"] for row in listing["systems"]}
