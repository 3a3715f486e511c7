"""A RabbitMQ node's launcher: writes its cookie and config into the data dir, then becomes the broker.

Run as `python3 -m faultbed.cluster.systems.rabbitmq.node --config <NodePlan as JSON>`; it
execs Debian's rabbitmq-server (the script under /usr/lib/rabbitmq/bin, not the
/usr/sbin wrapper, which insists on running as root or rabbitmq). Everything the
broker writes (mnesia, logs, pid file, cookie) lives under plan.data_dir, so a
restart after a kill keeps the node's state; the log goes to stdout.

With the option queue-type=classic-mirrored (Jepsen's 2014 setup) the node also loads
definitions.json at boot: the policy ha-mode exactly 3 with ha-sync-mode automatic on every
queue but faultbed's own member queues, and, because a node that loads definitions creates no
default user or vhost, the guest user and the / vhost; partitions are handled with
pause_minority instead of autoheal.

Ports: epmd on the plan's "epmd" port (ERL_EPMD_PORT, for the node and for its
peers: every node uses the same ports), Erlang distribution fixed to the "dist" port
(inet_dist_listen_min = max), AMQP on the "amqp" port. Peers' names (rabbit@n2)
resolve to the mesh, so epmd lookups and distribution both cross Toxiproxy.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from typing import Any

from faultbed.cluster.systems import SYSTEM_OPTIONS
from faultbed.cluster.systems.rabbitmq import AMQP, CLASSIC_MIRRORED, DIST, EPMD, queue_type

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
# First boot: the node holding the formation lock looks this many times, 0.5 s apart, for a
# peer that already has a database before it forms the cluster itself (RabbitMQ's default:
# 10). The lock keeps the others waiting meanwhile, so one look is plenty on a fresh cluster.
DISCOVERY_RETRIES = 2
# Distribution ticks: a peer that stays silent for about this long (s) is declared down.
# Erlang's default, 60 s, would outlast a whole test's partition, and quorum queues only
# elect a new leader once the old one's node is declared down (Ra monitors it).
NET_TICKTIME = 5
# Erlang schedulers must not spin on two shared cores (RabbitMQ's advice for shared hosts).
ERL_ARGS = "+sbwt none +sbwtdcpu none +sbwtdio none"
# Classic mirroring as Jepsen tested it in 2014: three copies of every queue, new mirrors
# synchronised at once. faultbed.member.* queues stay on their own node (see client.status).
MIRROR_POLICY = {"vhost": "/", "name": "faultbed-mirrored", "pattern": r"^(?!faultbed\.member\.)",
                 "apply-to": "queues", "priority": 0,
                 "definition": {"ha-mode": "exactly", "ha-params": 3, "ha-sync-mode": "automatic"}}
GUEST = "guest"
DEFINITIONS = "definitions.json"


def node_name(node: str) -> str:
    return f"rabbit@{node}"


def cookie(plan: dict[str, Any]) -> str:
    """The Erlang cookie: the same for every node of one run (derived from the run's data directory)."""
    run_data = os.path.dirname(os.path.normpath(plan["data_dir"]))
    return hashlib.sha256(f"faultbed-rabbitmq:{run_data}".encode()).hexdigest()


def plan_queue_type(plan: dict[str, Any]) -> str:
    """The run's queue type, from the plan's options (its `system` options, as the spec stores them)."""
    return queue_type((plan.get("options") or {}).get(SYSTEM_OPTIONS) or {})


def partition_handling(plan: dict[str, Any]) -> str:
    # autoheal, not pause_minority, for quorum queues: a partition that Mnesia notices only as it
    # heals (shorter than the tick time) leaves pause_minority with a split cluster for good;
    # autoheal restarts the losing side's nodes. Queue data is Raft's business either way.
    # Classic mirrored queues are run as Jepsen ran them: pause_minority.
    return "pause_minority" if plan_queue_type(plan) == CLASSIC_MIRRORED else "autoheal"


def password_hash(password: str, salt: bytes) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), 4-byte salt."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(plan: dict[str, Any]) -> dict[str, Any]:
    """definitions.json for classic-mirrored: the mirroring policy, and the guest user and / vhost
    that a node loading definitions at boot no longer creates itself."""
    salt = hashlib.sha256(cookie(plan).encode()).digest()[:4]
    return {
        "users": [{"name": GUEST, "password_hash": password_hash(GUEST, salt),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator"}],
        "vhosts": [{"name": "/"}],
        "permissions": [{"user": GUEST, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
        "policies": [MIRROR_POLICY],
    }


def config_text(plan: dict[str, Any]) -> str:
    """rabbitmq.conf (new-style, sysctl format)."""
    mirrored = plan_queue_type(plan) == CLASSIC_MIRRORED
    lines = [
        f"listeners.tcp.default = {plan['ports'][AMQP]}",
        "loopback_users = none",  # clients come through Docker's port publishing, not loopback
        "cluster_formation.peer_discovery_backend = classic_config",
        *(f"cluster_formation.classic_config.nodes.{i} = {node_name(n)}" for i, n in enumerate(plan["nodes"], 1)),
        f"cluster_formation.discovery_retry_limit = {DISCOVERY_RETRIES}",
        "cluster_formation.discovery_retry_interval = 500",
        f"cluster_partition_handling = {partition_handling(plan)}",
        f"net_ticktime = {NET_TICKTIME}",
        "log.console = true",
        "log.console.level = info",
        "log.file = false",
        *([f"load_definitions = {os.path.join(plan['data_dir'], DEFINITIONS)}"] if mirrored else []),
    ]
    return "\n".join(lines) + "\n"


def write_private(path: str, text: str, mode: int) -> None:
    """Write `text` to `path` with `mode` (a cookie must not be readable by others, or Erlang refuses it)."""
    if os.path.exists(path):
        os.chmod(path, 0o600)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


def environment(plan: dict[str, Any]) -> dict[str, str]:
    """rabbitmq-server's environment: everything under the data dir, names and ports from the plan."""
    data = plan["data_dir"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RABBITMQ_", "ERL_"))}
    env.update({
        "HOME": data,  # Erlang reads $HOME/.erlang.cookie
        "ERL_EPMD_PORT": str(plan["ports"][EPMD]),
        "RABBITMQ_NODENAME": node_name(plan["name"]),
        "RABBITMQ_USE_LONGNAME": "false",
        "RABBITMQ_NODE_PORT": str(plan["ports"][AMQP]),
        "RABBITMQ_DIST_PORT": str(plan["ports"][DIST]),
        "RABBITMQ_CONFIG_FILE": os.path.join(data, "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(data, "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": os.path.join(data, "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(data, "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": os.path.join(data, "mnesia"),
        "RABBITMQ_LOG_BASE": os.path.join(data, "log"),
        "RABBITMQ_PID_FILE": os.path.join(data, "rabbitmq.pid"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
    })
    return env


def prepare(plan: dict[str, Any]) -> dict[str, str]:
    """Write cookie and config files into the data dir; the broker's environment."""
    data = plan["data_dir"]
    for directory in ("mnesia", "log"):
        os.makedirs(os.path.join(data, directory), exist_ok=True)
    write_private(os.path.join(data, ".erlang.cookie"), cookie(plan), 0o400)
    write_private(os.path.join(data, "rabbitmq.conf"), config_text(plan), 0o644)
    write_private(os.path.join(data, "enabled_plugins"), "[].\n", 0o644)
    if plan_queue_type(plan) == CLASSIC_MIRRORED:
        write_private(os.path.join(data, DEFINITIONS), json.dumps(definitions(plan), indent=2), 0o644)
    return environment(plan)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="faultbed.cluster.systems.rabbitmq.node", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the NodePlan as JSON")
    plan = json.loads(parser.parse_args(argv).config)
    env = prepare(plan)
    sys.stdout.flush()
    os.execve(RABBITMQ_SERVER, [RABBITMQ_SERVER], env)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
