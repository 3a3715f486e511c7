"""Addresses: each node's own /26 bridge network from FAULTBED_DOCKER_POOL, kept clear of the
host's routes and of other Docker networks (see the package docstring for the layout)."""

from __future__ import annotations

import ipaddress
import os
import random

import docker.errors
import docker.types
from docker.client import DockerClient

from faultbed.errors import SetupError

SUBNET_POOL = os.environ.get("FAULTBED_DOCKER_POOL", "10.213.0.0/16")
SUBNET_PREFIX = 26
FIRST_PEER_ADDRESS = 8          # .8+j in a node's subnet is reserved for peer j
DYNAMIC_RANGE_PREFIX = 29       # Docker's IPAM may hand out .0-.7 only


def hosts(subnet: ipaddress.IPv4Network) -> list[str]:
    return [str(subnet.network_address + i) for i in range(subnet.num_addresses)]


def host_routes() -> list[ipaddress.IPv4Network]:
    """Networks this machine routes (from /proc/net/route), which a new subnet must not overlap."""
    routes = []
    try:
        with open("/proc/net/route", encoding="ascii") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                destination, mask = (int(fields[i], 16).to_bytes(4, "little") for i in (1, 7))
                if int.from_bytes(mask, "big"):
                    routes.append(ipaddress.IPv4Network(
                        (ipaddress.IPv4Address(destination), ipaddress.IPv4Address(mask).exploded), strict=False))
    except OSError:
        pass
    return routes


def docker_subnets(client: DockerClient) -> list[ipaddress.IPv4Network]:
    subnets = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            try:
                subnets.append(ipaddress.IPv4Network(config.get("Subnet", ""), strict=False))
            except ValueError:
                continue  # IPv6 or none
    return subnets


def create_network(client: DockerClient, name: str, labels: dict[str, str]) -> ipaddress.IPv4Network:
    """A bridge network `name` on a free /26 of the pool, masquerading off; Docker itself refuses overlaps."""
    try:
        pool = ipaddress.IPv4Network(SUBNET_POOL)
    except ValueError as exc:
        raise SetupError(f"FAULTBED_DOCKER_POOL={SUBNET_POOL!r} is not an IPv4 network: {exc}") from None
    candidates = list(pool.subnets(new_prefix=SUBNET_PREFIX))
    start = random.randrange(len(candidates))
    taken = host_routes() + docker_subnets(client)
    for subnet in candidates[start:] + candidates[:start]:
        if any(subnet.overlaps(other) for other in taken):
            continue
        dynamic = next(subnet.subnets(new_prefix=DYNAMIC_RANGE_PREFIX))
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=str(subnet), iprange=str(dynamic), gateway=hosts(subnet)[1])])
        try:
            client.networks.create(
                name, driver="bridge", ipam=ipam, check_duplicate=True,
                labels=labels,
                options={"com.docker.network.bridge.enable_ip_masquerade": "false"})
        except docker.errors.APIError as exc:
            if "overlap" in str(exc).lower():
                taken.append(subnet)
                continue
            raise SetupError(f"docker: cannot create the network {name}: {exc.explanation}") from exc
        return subnet
    raise SetupError(f"docker: no free /{SUBNET_PREFIX} left in {SUBNET_POOL} (FAULTBED_DOCKER_POOL)")
