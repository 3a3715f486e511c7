"""`faultbed list`: every kind of plugin, each registered name with its line and origin."""

from __future__ import annotations

import pytest

from faultbed import plugins
from faultbed.cli import main


def test_list_prints_every_kind_and_every_built_in_with_its_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    headers = [line[:-1] for line in out if not line.startswith(" ")]
    assert headers == list(plugins.KINDS)
    rows = {line.split()[0]: line for line in out if line.startswith("  ") and line.split()[0] != "--option"}
    for name in ["raftkv", "etcd", "register", "partition", "power-loss", "linearizable", "raft-invariants",
                 "local", "docker"]:
        assert rows[name].endswith("[built-in]"), rows[name]
    # one column for the descriptions, however long a name is
    starts = {line.index(line.split()[1], len(line.split()[0]) + 2) for line in rows.values()}
    assert len(starts) == 1, starts


def test_list_shows_the_options_a_system_offers(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["list", "systems"]) == 0
    out = capsys.readouterr().out.splitlines()
    below = out[[line.split()[0] for line in out[1:]].index("rabbitmq") + 2]
    assert below.strip().startswith("--option queue-type=quorum|classic-mirrored (default quorum): "), below
    assert main(["list", "systems", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["systems"]}
    assert rows["rabbitmq"]["options"][0]["choices"] == ["quorum", "classic-mirrored"]
    assert rows["broker"]["options"] == [] and rows["raftkv"]["options"][0]["name"] == "append-batch"


def test_list_of_one_kind_names_only_that_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "workloads"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "workloads:"
    assert sorted(line.split()[0] for line in out[1:]) == plugins.names("workloads")
