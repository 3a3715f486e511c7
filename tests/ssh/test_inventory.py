"""The ssh backend's inventory: every mistake a user can make in hosts.toml is one line and exit 3,
before a results directory exists (no hosts needed: nothing is dialled)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faultbed.cli import main
from faultbed.cluster.ssh.inventory import load_inventory
from faultbed.errors import FaultbedError


def write(tmp_path: Path, text: str, name: str = "hosts.toml") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))  # the cases are ASCII but for the not-UTF-8 one
    return str(path)


@pytest.fixture
def key(tmp_path: Path) -> str:
    path = tmp_path / "id_test"
    path.write_text("not really a key; the inventory only checks that it is a readable file\n")
    return str(path)


def test_nodes_go_round_robin_over_the_hosts_without_a_nodes_table(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, f'[defaults]\nkey = "{key}"\n[hosts.a]\naddress = "10.0.0.1"\n'
                           '[hosts.b]\naddress = "10.0.0.2"\nport = 2222\nuser = "deploy"\n')
    inventory = load_inventory(path, ["n1", "n2", "n3"])
    assert inventory.nodes == {"n1": "a", "n2": "b", "n3": "a"}
    assert inventory.hosts["b"].port == 2222 and inventory.hosts["b"].user == "deploy"
    assert inventory.hosts["a"].key == key and inventory.hosts["a"].workdir == "/var/tmp/faultbed"
    assert [h.name for h in inventory.used_hosts()] == ["a", "b"]


def test_a_relative_key_path_is_relative_to_the_inventory(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, f'[hosts.a]\naddress = "h.example"\nkey = "{os.path.basename(key)}"\n')
    assert load_inventory(path, ["n1"]).hosts["a"].key == key


BAD = {
    "missing file": (None, "no such file"),
    "not toml": ("[hosts.a\naddress=", "not valid TOML"),
    "not utf-8": ("[hosts.a]\naddress = '\xff'\n", "not valid TOML: not UTF-8"),
    "no hosts": ("[defaults]\nuser = 'root'\n", "no [hosts.NAME] table"),
    "password": ("[hosts.a]\naddress = '10.0.0.1'\npassword = 'hunter2'\n", "passwords are never read"),
    "no address": ("[hosts.a]\nuser = 'root'\n", "address is missing"),
    "bad address": ("[hosts.a]\naddress = 'a b;rm -rf /'\n", "neither an IP address nor a host name"),
    "bad port": ("[hosts.a]\naddress = '10.0.0.1'\nport = 70000\n", "port must be an integer"),
    "missing key file": ("[hosts.a]\naddress = '10.0.0.1'\nkey = 'nowhere/id'\n", "key: no such file"),
    "key and agent": ("[hosts.a]\naddress = '10.0.0.1'\nkey = 'id_test'\nagent = true\n", "not both"),
    "bad workdir": ("[hosts.a]\naddress = '10.0.0.1'\nworkdir = '/tmp'\n", "workdir must be"),
    "node to no host": ("[hosts.a]\naddress = '10.0.0.1'\n[nodes]\nn1 = 'a'\nn2 = 'zz'\n", "names no host"),
    "node unmapped": ("[hosts.a]\naddress = '10.0.0.1'\n[nodes]\nn1 = 'a'\n", "n2 mapped to no host"),
    "unknown top key": ("hostz = 1\n[hosts.a]\naddress = '10.0.0.1'\n", "unknown key(s) hostz"),
    "skew": ("max_clock_skew_ms = -1\n[hosts.a]\naddress = '10.0.0.1'\n", "max_clock_skew_ms must be"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_inventory_is_one_line_and_exit_3_before_anything_is_stored(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str, case: str) -> None:
    text, expected = BAD[case]
    path = str(tmp_path / "absent.toml") if text is None else write(tmp_path, text)
    store = tmp_path / "store"
    code = main(["run", "--backend", "ssh", "--hosts", path, "--nodes", "2", "--nemesis", "none",
                 "--time-limit", "1", "--store", str(store), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3, err
    assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0], err
    assert not store.exists(), "a bad inventory must be refused before a results directory is made"


def test_the_ssh_backend_without_hosts_says_what_it_needs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["run", "--backend", "ssh", "--nodes", "2", "--time-limit", "1", "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and "needs --hosts FILE" in err and len(err.splitlines()) == 1


def test_disk_faults_are_refused_on_the_ssh_backend(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   key: str) -> None:
    path = write(tmp_path, "[hosts.a]\naddress = '10.0.0.1'\n")
    code = main(["run", "--backend", "ssh", "--hosts", path, "--nodes", "3", "--nemesis", "power-loss",
                 "--time-limit", "1", "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and "cannot inject disk faults" in err, err


def test_a_bad_inventory_for_gc_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["gc", "--hosts", write(tmp_path, "[hosts.a]\nport = 22\n")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and "address is missing" in err and len(err.splitlines()) == 1, err
