"""A system whose nodes exit at once, as a misconfigured binary would: a real process that never starts."""

from __future__ import annotations

from typing import Any

from faultbed.cluster.backend import NodePlan
from faultbed.cluster.systems import DEFAULT_TRAITS


class NeverStarts:
    name = "never-starts"
    ports = ("peer", "client")
    peer_ports = ("peer",)
    client_port = "client"
    bugs: dict[str, str] = {}
    workloads = ("register",)
    traits = DEFAULT_TRAITS

    def command(self, plan: NodePlan) -> list[str]:
        return [plan.python, "-c", "import sys; print('fatal: cannot open config', flush=True); sys.exit(2)"]

    def open_client(self, address: tuple[str, int], node: str, timeout: float,
                    bugs: tuple[str, ...] = ()) -> Any:
        import socket
        return socket.create_connection(address, timeout=timeout)


SYSTEM = NeverStarts()
