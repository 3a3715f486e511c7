"""A chaos suite spread over two hosts, its runs gathered into one store that one `faultbed serve` browses.

Two test hosts (cluster/ssh/testhosts.py) see this checkout read-only at its own path, as docs/REMOTE.md
asks of a campaign host ("a checkout after `make setup` ... at the same absolute path"). Each runs its
shard of (a part of) examples/chaos_suite over ssh, both at once, with FAULTBED_HOST naming it; `faultbed
store pull --hosts` gathers both stores here, and `faultbed serve` lists the runs of both hosts.

The suite is cut to two tests (one per host, 3 nodes, 5 s each) to keep this under two minutes; the full
suite spreads the same way (docs/REMOTE.md).
"""

from __future__ import annotations

import html
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from faultbed.cluster.ssh.connection import SSH, ssh_options
from faultbed.cluster.ssh.testhosts import TestHosts
from tests.integration.conftest import ROOT, run_faultbed

pytestmark = [pytest.mark.docker]

REMOTE_STORE = "/var/tmp/chaos"
SUITE = "examples/chaos_suite"
CHOSEN = "under_partitions or when_nodes_are_killed"  # two whole runs of the example suite
SHARD_TIMEOUT = 300


def shard_command(host: str, index: int, count: int) -> str:
    """What host `host` runs: its shard of the chosen tests, from the checkout, into its own store."""
    return (f"cd {shlex.quote(str(ROOT))} && FAULTBED_HOST={host} PYTHONDONTWRITEBYTECODE=1 "
            f".venv/bin/python -m pytest -p no:cacheprovider -v {SUITE} -k {shlex.quote(CHOSEN)} "
            f"--faultbed-shard {index}/{count} --faultbed-store {REMOTE_STORE}")


def test_the_example_suite_spread_over_two_hosts_is_browsable_in_one_faultbed_serve(tmp_path: Path) -> None:
    with TestHosts(2, str(tmp_path / "hosts"), mounts={str(ROOT): str(ROOT)}) as hosts:
        shards = {name: subprocess.Popen([SSH, *ssh_options(hosts.host(name)), hosts.addresses[name],
                                          shard_command(name, index, len(hosts.names))],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)
                  for index, name in enumerate(hosts.names, start=1)}
        ran: dict[str, list[str]] = {}
        for name, shard in shards.items():
            output, _ = shard.communicate(timeout=SHARD_TIMEOUT)
            assert shard.returncode == 0, f"{name}: {output[-3000:]}"
            assert f"faultbed: shard {list(shards).index(name) + 1}/2 of the collected tests" in output, output
            ran[name] = re.findall(r"::(test_\w+) PASSED", output)
        assert all(len(tests) == 1 for tests in ran.values()) and len({t for ts in ran.values() for t in ts}) == 2, \
            f"each host ran one of the two tests: {ran}"

        store = tmp_path / "store"
        pull = run_faultbed("store", "pull", "--hosts", hosts.inventory_path, "--from", REMOTE_STORE,
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
        for _, link, host in rows:  # each host's run opens, with the node logs that came from that host
            with urllib.request.urlopen(match[1] + html.unescape(link), timeout=30) as response:
                report = response.read().decode()
            assert '<a href="nodes/n1.log">' in report and "verdict" in report.lower(), (host, link)
    finally:
        serve.terminate()
        serve.wait(10)
