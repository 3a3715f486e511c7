"""The test hosts themselves: each its own address and sshd that takes only the generated key, the
hosts reach one another on their private network, and nothing of them outlives the context."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from docker.client import DockerClient

from faultbed.cluster.docker import LABEL_RUN
from faultbed.cluster.ssh.connection import diagnose, ssh_options
from faultbed.cluster.ssh.testhosts import TestHosts

pytestmark = pytest.mark.docker


def ssh(hosts: TestHosts, name: str, command: str, **changes: str) -> subprocess.CompletedProcess[str]:
    host = dataclasses.replace(hosts.host(name), **changes)
    options = ssh_options(host)
    return subprocess.run(["ssh", *options, host.address, command], capture_output=True, text=True, timeout=60)


def test_each_host_has_its_own_address_and_sshd_and_only_our_key_gets_in(tmp_path: Path) -> None:
    with TestHosts(2, str(tmp_path / "hosts")) as hosts:
        run_id = hosts.run_id
        assert len(set(hosts.addresses.values())) == 2
        for name, address in hosts.addresses.items():
            result = ssh(hosts, name, "hostname; ip -4 -o addr show")
            assert result.returncode == 0, result.stderr
            assert result.stdout.split()[0] == name and f"inet {address}/" in result.stdout
        # the hosts reach each other on the private network (h1 -> h2's sshd)
        code, output = hosts.exec("h1", ["python3", "-c", "import socket; socket.create_connection("
                                         f"('{hosts.addresses['h2']}', 22), 3).close(); print('ok')"])
        assert code == 0 and output.strip() == "ok", output
        other = tmp_path / "other_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
        refused = ssh(hosts, "h1", "true", key=str(other))
        assert refused.returncode == 255 and diagnose(refused.stderr).startswith("refused our key"), refused.stderr
        empty = tmp_path / "empty_known_hosts"
        empty.write_text("")
        unknown = ssh(hosts, "h1", "true", known_hosts=str(empty))
        assert unknown.returncode == 255 and "unknown host key" in diagnose(unknown.stderr), unknown.stderr
    client = DockerClient.from_env(timeout=30)
    try:
        label = {"label": f"{LABEL_RUN}={run_id}"}
        assert client.containers.list(all=True, filters=label) == []
        assert client.networks.list(filters=label) == []
    finally:
        client.close()
