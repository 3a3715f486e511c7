"""Pulling the stores of an inventory's hosts over ssh, into one store (faultbed/merge.py).

One `ssh HOST tar -cf - -C DIR .` per host, streamed into a local `tar -x` in a temporary
directory (GNU tar drops leading slashes and refuses members with `..`), then merged with the
host's inventory name as its runs' host. The ssh options are the ssh backend's own (strict
host keys, batch mode, the inventory's key and known_hosts: cluster/ssh/connection.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import tempfile

from faultbed.cluster.ssh.connection import SSH, diagnose, ssh_options
from faultbed.cluster.ssh.inventory import Host
from faultbed.errors import FaultbedError
from faultbed.merge import Merged, merge_stores

log = logging.getLogger(__name__)
PULL_CONNECT_TIMEOUT = 30  # seconds; ssh keeps an option's first value, so this comes before ssh_options
PULL_TIMEOUT = 1800.0  # seconds for one host's store; a campaign's store with node data can be large


def pull_stores(hosts: list[Host], remote_store: str, into: str) -> dict[str, list[Merged]]:
    """Every run of `remote_store` on each of `hosts`, merged into `into`; keyed by host name.

    A host that cannot be reached, or has no such store, is one FaultbedError line naming it,
    raised before anything is merged (what was pulled is then discarded)."""
    with tempfile.TemporaryDirectory(prefix="faultbed-pull-") as scratch:
        copies = {}
        for host in hosts:
            copy = os.path.join(scratch, host.name)
            os.mkdir(copy)
            fetch_store(host, remote_store, copy)
            copies[host.name] = copy
        return {name: merge_stores([copy], into, host=name, relabel=True)[copy] for name, copy in copies.items()}


def fetch_store(host: Host, remote_store: str, into: str) -> None:
    """Copy the directory `remote_store` of `host` into the (empty) local directory `into`."""
    where = f"host {host.name} ({host.user}@{host.address}:{host.port})"
    remote = shlex.join(["tar", "-C", remote_store, "-cf", "-", "."])
    # a longer connect timeout than a run's: nothing waits on a pull, and a loaded host answers late
    with subprocess.Popen([SSH, "-o", f"ConnectTimeout={PULL_CONNECT_TIMEOUT}", *ssh_options(host), host.address,
                           "--", remote], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as sender:
        assert sender.stdout is not None
        try:
            receiver = subprocess.run(["tar", "-C", into, "-xf", "-", "--no-same-owner", "--no-same-permissions"],
                                      stdin=sender.stdout, capture_output=True, timeout=PULL_TIMEOUT)
            sender.stdout.close()
            _, sent_err = sender.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sender.kill()
            raise FaultbedError(f"{where}: {remote_store} not copied within {PULL_TIMEOUT:g}s") from None
    errors = sent_err.decode(errors="replace")
    if sender.returncode == 255:
        raise FaultbedError(f"{where}: {diagnose(errors)}")
    if sender.returncode == 1:  # GNU tar: a file changed while it was read (a run still going): copied as seen
        log.warning("%s: %s changed while it was copied: %s", where, remote_store, _last_line(errors))
    elif sender.returncode != 0:
        if "cannot open" in errors.lower() or "no such file" in errors.lower():
            raise FaultbedError(f"{where}: no store at {remote_store}")
        raise FaultbedError(f"{where}: cannot read {remote_store}: {_last_line(errors)}")
    if receiver.returncode != 0:
        raise FaultbedError(f"{where}: cannot unpack its store here: {_last_line(receiver.stderr.decode(errors='replace'))}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no message"
