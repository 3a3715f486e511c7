"""`faultbed store merge`: runs of several hosts in one store, never colliding, browsable, replayable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from faultbed import store
from faultbed.commands.serve import render_listing, summarize_runs
from faultbed.errors import FaultbedError
from faultbed.merge import find_runs, merge_stores
from tests.e2e.synthetic_runs import make_run

STAMP = "20261201T080000Z"


def host_store(root, host: str, stamps=(STAMP,), valid=True) -> str:
    """A store as `host` leaves it: runs with origin.json naming it (same stamps on every host)."""
    path = str(root / host)
    for stamp in stamps:
        run_dir = make_run(path, stamp, valid=valid)
        store.write_json(run_dir, store.ORIGIN, {"host": host, "path": run_dir})
    return path


def faultbed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faultbed", *args], capture_output=True, text=True, timeout=60)


def test_runs_of_the_same_second_on_two_hosts_land_apart_and_say_where_they_ran(tmp_path):
    a, b = host_store(tmp_path, "host-a"), host_store(tmp_path, "host-b", valid=False)
    into = str(tmp_path / "all")
    merged = merge_stores([a, b], into)
    targets = sorted(m.target for runs in merged.values() for m in runs)
    assert targets == [os.path.join(into, "raftkv-register", f"{STAMP}@host-a"),
                       os.path.join(into, "raftkv-register", f"{STAMP}@host-b")]
    rows = {row.host: row for row in summarize_runs(into)}
    assert set(rows) == {"host-a", "host-b"}
    assert (rows["host-a"].label, rows["host-b"].label) == ("valid", "INVALID")
    page = render_listing(into)
    assert "2 run(s) from 2 host(s)" in page
    assert '<td class="host">host-a</td>' in page and '<td class="host">host-b</td>' in page


def test_a_merged_run_names_its_new_place_in_replay_and_keeps_its_origin(tmp_path):
    a = host_store(tmp_path, "host-a")
    into = str(tmp_path / "all")
    (copied,) = merge_stores([a], into)[a]
    results = json.loads(open(os.path.join(copied.target, store.RESULTS)).read())
    assert results["replay"] == f"faultbed replay {copied.target}"
    origin = store.read_origin(copied.target)
    assert origin["host"] == "host-a" and origin["path"].startswith(a) and origin["merged_from"] == origin["path"]
    # the history and the node logs came along byte for byte
    for name in ("history.jsonl", os.path.join("nodes", "n1.log"), store.SPEC):
        assert open(os.path.join(copied.target, name), "rb").read() == open(os.path.join(copied.source, name),
                                                                            "rb").read()
    # replay runs into the store that holds the run now, not the path it had on its host
    recorded = json.loads(open(os.path.join(copied.target, store.SPEC)).read())["store"]
    assert recorded == a
    assert store.home_store(copied.target, recorded) == into
    assert store.home_store(copied.source, recorded) == a


def test_merging_again_copies_nothing_twice_and_adds_only_new_runs(tmp_path):
    a = host_store(tmp_path, "host-a")
    into = str(tmp_path / "all")
    merge_stores([a], into)
    make_run(a, "20261201T090000Z")
    again = merge_stores([a], into)[a]
    assert sorted(m.copied for m in again) == [False, True]
    assert len(store.list_runs(into)) == 2


def test_nested_stores_are_searched_and_runs_without_origin_take_the_given_host(tmp_path):
    campaign = tmp_path / "campaign"
    for seed in (1, 2):  # bench.campaign keeps each seed's runs in their own store
        make_run(str(campaign / f"seed-{seed}"), STAMP)
    os.symlink("raftkv-register", campaign / "seed-1" / "latest")
    assert len(find_runs(str(campaign))) == 2
    into = str(tmp_path / "all")
    merged = merge_stores([str(campaign)], into, host="ci-job-3")[str(campaign)]
    assert [m.host for m in merged] == ["ci-job-3", "ci-job-3"]
    assert sorted(os.path.basename(m.target) for m in merged) == [f"{STAMP}@ci-job-3", f"{STAMP}@ci-job-3+1"]
    assert len(store.list_runs(into)) == 2


def test_every_new_run_records_the_host_it_ran_on(tmp_path, monkeypatch):
    from faultbed.spec import TestSpec

    monkeypatch.setenv(store.HOST_ENV, "rack7-b")
    run_dir = store.create_run_dir(TestSpec(store=str(tmp_path)))
    assert store.read_origin(run_dir) == {"host": "rack7-b", "path": run_dir}
    monkeypatch.setenv(store.HOST_ENV, "../etc")
    with pytest.raises(FaultbedError, match="FAULTBED_HOST"):
        store.create_run_dir(TestSpec(store=str(tmp_path)))


def test_merge_command_prints_what_it_copied_and_how_to_browse(tmp_path):
    a, b = host_store(tmp_path, "host-a"), host_store(tmp_path, "host-b", stamps=(STAMP, "20261201T080001Z"))
    into = str(tmp_path / "all")
    proc = faultbed("store", "merge", "--into", into, a, b)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"merge: {a}: 1 run(s) copied, 0 already there (host-a)",
        f"merge: {b}: 2 run(s) copied, 0 already there (host-b)",
        f"merge: 3 new run(s) in {into}, from 2 host(s)",
        f"browse: faultbed serve --store {into}"]


@pytest.mark.parametrize("case", ["missing", "inside", "bad-host", "no-into"])
def test_merge_command_refuses_bad_input_in_one_line_and_copies_nothing(tmp_path, case):
    a = host_store(tmp_path, "host-a")
    into = str(tmp_path / "all")
    args = {"missing": ["--into", into, a, str(tmp_path / "nope")],
            "inside": ["--into", os.path.join(a, "merged"), a],
            "bad-host": ["--into", into, "--host", "a/b", a],
            "no-into": [a]}[case]
    proc = faultbed("store", "merge", *args)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not os.path.exists(os.path.join(into, "raftkv-register"))


def refused_inventory(tmp_path) -> str:
    """An inventory whose only host refuses connections (a loopback port nothing listens on)."""
    from faultbed.cluster.ports import PortReservation

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    (tmp_path / "known_hosts").write_text("")
    with PortReservation() as ports:
        port = ports.take()[0]  # reserved, so nobody else listens there while the test runs
        inventory = tmp_path / "hosts.toml"
        inventory.write_text(f'[defaults]\nkey = "{key}"\nknown_hosts = "{tmp_path / "known_hosts"}"\n'
                             f'[hosts.h1]\naddress = "127.0.0.1"\nport = {port}\n')
        return str(inventory)


@pytest.mark.parametrize("case", ["refused", "unknown-only", "bad-inventory"])
def test_pull_refuses_an_unreachable_host_or_a_bad_inventory_in_one_line(tmp_path, case):
    inventory = refused_inventory(tmp_path)
    if case == "bad-inventory":
        (tmp_path / "bad.toml").write_text('[hosts.h1]\naddress = "127.0.0.1"\npassword = "x"\n')
        inventory = str(tmp_path / "bad.toml")
    extra = ["--only", "h9"] if case == "unknown-only" else []
    into = tmp_path / "all"
    proc = faultbed("store", "pull", "--hosts", inventory, "--from", "/var/tmp/store", "--into", str(into), *extra)
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert {"refused": "host h1 (root@127.0.0.1:", "unknown-only": "--only: h9 not in",
            "bad-inventory": "unknown key(s) password"}[case] in line
    assert not into.exists() or not any(into.iterdir())
