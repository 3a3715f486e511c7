"""Fixtures of the ssh backend's tests: three hosts on this machine (containers with an sshd on a
private network, cluster/ssh/testhosts.py), shared by a module.

These tests need the Docker engine and the test host image (`make images` builds it, or the
fixture builds it on first use); without them they fail, they do not skip.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from faultbed.cluster.ssh.testhosts import TestHosts


@pytest.fixture(scope="module")
def ssh_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestHosts]:
    """Hosts h1, h2, h3, each with its own address and sshd; removed when the module is done."""
    with TestHosts(3, str(tmp_path_factory.mktemp("hosts"))) as hosts:
        yield hosts
