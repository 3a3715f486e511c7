"""A chaos suite spread over two hosts, its runs gathered into one store that one `faultbed serve` browses.

Two test hosts (cluster/ssh/testhosts.py) see this checkout read-only at its own path, as docs/REMOTE.md
asks of a campaign host ("a checkout after `make setup` ... at the same absolute path"). The suite is
spread both ways docs/REMOTE.md gives: shards (each host runs its share over ssh, both at once) and
pytest-xdist's ssh gateways (`--tx ssh=...`, one command here); FAULTBED_HOST names each host in its runs.
Then `faultbed store pull --hosts` gathers the hosts' stores here, and `faultbed serve` lists the runs of
both hosts.

The suite is cut to two tests (one per host, 3 nodes, 5 s each) to keep each test well under two minutes;
the whole suite spreads the same way.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from faultbed.cluster.ssh.connection import SSH, ssh_options
from faultbed.cluster.ssh.testhosts import TestHosts
from tests.integration.conftest import ROOT, run_faultbed

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("suite-hosts")]

SUITE = "examples/chaos_suite"
CHOSEN = "under_partitions or when_nodes_are_killed"  # two whole runs of the example suite
SUITE_TIMEOUT = 300
XDIST_DIR = "/var/tmp/xdist"  # a host's scratch directory for xdist (it copies pytest into chdir=)


@pytest.fixture(scope="module")
def suite_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestHosts]:
    """h1 and h2, each seeing this checkout read-only at its own path."""
    with TestHosts(2, str(tmp_path_factory.mktemp("suite-hosts")), mounts={str(ROOT): str(ROOT)}) as hosts:
        yield hosts


def ssh_argv(hosts: TestHosts, name: str) -> list[str]:
    return [SSH, *ssh_options(hosts.host(name)), hosts.addresses[name]]


def pull_and_browse(hosts: TestHosts, remote_store: str, store: Path) -> None:
    """Gather every host's `remote_store` into `store`; one `faultbed serve` lists a valid run of h1 and
    one of h2, and each report opens with the node logs that came from its host."""
    pull = run_faultbed("store", "pull", "--hosts", hosts.inventory_path, "--from", remote_store,
                        "--into", str(store), timeout=300)
    assert pull.returncode == 0, pull.stdout + pull.stderr
    runs = sorted(p for p in store.glob("*/*@*") if p.is_dir())
    assert sorted(p.name.rsplit("@", 1)[1] for p in runs) == ["h1", "h2"], runs
    serve = subprocess.Popen([sys.executable, "-m", "faultbed", "serve", "--store", str(store), "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert match, f"serve said: {line!r}"
        with urllib.request.urlopen(match[1] + "/", timeout=30) as response:
            page = response.read().decode()
        assert "2 run(s) from 2 host(s)" in page, page
        rows = re.findall(r'<tr class="run (\w+)"[^>]*><td><a href="([^"]+)">.*?<td class="host">([^<]*)</td>',
                          page, flags=re.S)
        assert sorted((verdict, host) for verdict, _, host in rows) == [("valid", "h1"), ("valid", "h2")], rows
        for _, link, host in rows:
            with urllib.request.urlopen(match[1] + html.unescape(link), timeout=30) as response:
                report = response.read().decode()
            assert '<a href="nodes/n1.log">' in report and "verdict" in report.lower(), (host, link)
    finally:
        serve.terminate()
        serve.wait(10)


def test_the_example_suite_in_shards_over_two_hosts_is_browsable_in_one_faultbed_serve(
        suite_hosts: TestHosts, tmp_path: Path) -> None:
    remote_store = "/var/tmp/chaos-shards"
    shards = {}
    for index, name in enumerate(suite_hosts.names, start=1):
        command = (f"cd {shlex.quote(str(ROOT))} && FAULTBED_HOST={name} PYTHONDONTWRITEBYTECODE=1 "
                   f".venv/bin/python -m pytest -p no:cacheprovider -v {SUITE} -k {shlex.quote(CHOSEN)} "
                   f"--faultbed-shard {index}/2 --faultbed-store {remote_store}")
        shards[name] = subprocess.Popen([*ssh_argv(suite_hosts, name), command], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ran: dict[str, list[str]] = {}
    for index, (name, shard) in enumerate(shards.items(), start=1):
        output, _ = shard.communicate(timeout=SUITE_TIMEOUT)
        assert shard.returncode == 0, f"{name}: {output[-3000:]}"
        assert f"faultbed: shard {index}/2 of the collected tests" in output, output
        ran[name] = re.findall(r"::(test_\w+) PASSED", output)
    assert all(len(tests) == 1 for tests in ran.values()) and len({t for ts in ran.values() for t in ts}) == 2, \
        f"each host ran one of the two tests: {ran}"
    pull_and_browse(suite_hosts, remote_store, tmp_path / "store")


def test_the_example_suite_over_xdist_ssh_gateways_is_browsable_in_one_faultbed_serve(
        suite_hosts: TestHosts, tmp_path: Path) -> None:
    remote_store = "/var/tmp/chaos-xdist"
    python = f"{ROOT}/.venv/bin/python"
    gateways = []
    for name in suite_hosts.names:
        host = suite_hosts.host(name)
        code, output = suite_hosts.exec(name, ["mkdir", "-p", XDIST_DIR])
        assert code == 0, output
        options = " ".join(ssh_options(host))
        assert "//" not in options and all(" " not in part for part in ssh_options(host)), options
        gateways += ["--tx", f"ssh={options} {host.address}//id={name}"
                             f"//python=env FAULTBED_HOST={name} PYTHONDONTWRITEBYTECODE=1 {python}//chdir={XDIST_DIR}"]
    # The suite's path is relative to chdir= on the hosts, where it names the checkout; here it must name
    # nothing (xdist 3.1 stops on a local path outside an rsync root, pytest-xdist #1081).
    suite = os.path.relpath(ROOT / SUITE, XDIST_DIR)
    controller = tmp_path / "controller"
    controller.mkdir()
    assert not (controller / suite).exists()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-d", "--max-worker-restart", "0",
                           "-v", *gateways, "--faultbed-store", remote_store, suite, "-k", CHOSEN],
                          cwd=controller, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    ran = re.findall(r"^\[(h\d)\] \[ *\d+%\] PASSED \S+::(test_\w+)", proc.stdout, flags=re.M)
    assert len(ran) == 2 and len({test for _, test in ran}) == 2, proc.stdout[-3000:]
    pull_and_browse(suite_hosts, remote_store, tmp_path / "store")
