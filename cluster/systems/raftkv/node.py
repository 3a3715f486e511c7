"""One raftkv node: `python -m faultbed.cluster.systems.raftkv.node --config '<NodePlan as JSON>'`.

Starts the Raft replica (journal, dump and vote in `data_dir`), then the client port;
logs to stderr (the backend keeps it as nodes/<node>.log) and stops cleanly on SIGTERM
or SIGINT. Exit codes: 0 stopped, 3 bad config or a port that cannot be bound.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Callable

from faultbed.cluster.systems import SYSTEM_OPTIONS
from faultbed.cluster.systems.raftkv import APPEND_BATCH, APPEND_BATCH_BYTES, BUGS, COMPACTION, raft_bugs
from faultbed.cluster.systems.raftkv.replica import RaftTimers, Replica, ReplicaConfig
from faultbed.cluster.systems.raftkv.server import ClientServer, KVService

log = logging.getLogger("raftkv.node")

KNOWN_BUGS = tuple(BUGS)


@dataclass(frozen=True)
class NodeConfig:
    """The parts of a NodePlan a raftkv node uses."""

    name: str
    listen_host: str
    raft_port: int
    client_port: int
    identities: dict[str, str]
    dial: dict[str, str]
    data_dir: str
    bugs: frozenset[str] = frozenset()
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_plan_json(cls, text: str, known_bugs: tuple[str, ...] = KNOWN_BUGS) -> "NodeConfig":
        """Parse and validate; raises ValueError with a one-line reason."""
        try:
            plan = json.loads(text)
            name = plan["name"]
            config = cls(
                name=name,
                listen_host=plan["listen_host"],
                raft_port=int(plan["ports"]["raft"]),
                client_port=int(plan["ports"]["client"]),
                identities=dict(plan["identities"]),
                dial={peer: ports["raft"] for peer, ports in plan["dial"].items() if peer != name},
                data_dir=plan["data_dir"],
                bugs=frozenset(plan.get("bugs") or ()),
                options=dict(plan.get("options") or {}),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"bad node config: {type(exc).__name__}: {exc}") from exc
        unknown = config.bugs - set(known_bugs)
        if unknown:
            raise ValueError(f"unknown bug(s): {', '.join(sorted(unknown))} (known: {', '.join(known_bugs)})")
        if {"no-dedupe", "local-dedupe"} <= config.bugs:
            raise ValueError("bugs no-dedupe and local-dedupe exclude each other")
        missing = (set(config.identities) - {name}) - set(config.dial)
        if name not in config.identities or missing:
            raise ValueError(f"identities and dial must cover every node (missing dial for {sorted(missing)})")
        return config

    def replica_config(self) -> ReplicaConfig:
        chosen = self.options.get(SYSTEM_OPTIONS) or {}  # --option NAME=VALUE
        return ReplicaConfig(
            name=self.name,
            identities=self.identities,
            dial=self.dial,
            listen_host=self.listen_host,
            raft_port=self.raft_port,
            data_dir=self.data_dir,
            dedupe="no-dedupe" not in self.bugs,
            sync_journal="no-journal-sync" not in self.bugs,
            timers=RaftTimers.from_options(dict(self.options.get("raft") or {})),
            compaction_entries=int(chosen.get(COMPACTION.name,
                                              self.options.get("compaction_entries", COMPACTION.default))),
            pysyncobj_bugs=raft_bugs(self.bugs),
            append_batch_bytes=APPEND_BATCH_BYTES[chosen.get(APPEND_BATCH.name, APPEND_BATCH.default)],
        )


def plan_json_from_flags(args: argparse.Namespace) -> str:
    """The flags as the NodePlan JSON that --config takes; ValueError when one is missing or malformed."""
    missing = [flag for flag in ("name", "raft_port", "client_port", "data_dir") if getattr(args, flag) is None]
    if missing:
        raise ValueError("give --config or all of " + ", ".join("--" + m.replace("_", "-") for m in missing))

    def pairs(text: str, flag: str) -> dict[str, str]:
        found = {}
        for item in filter(None, text.split(",")):
            node, sep, address = item.partition("=")
            if not sep or not node or not address:
                raise ValueError(f"--{flag}: {item!r} is not NODE=HOST:PORT")
            found[node] = address
        return found

    plan = {"name": args.name, "listen_host": args.listen_host,
            "ports": {"raft": args.raft_port, "client": args.client_port},
            "identities": pairs(args.identities, "identities"),
            "dial": {peer: {"raft": address} for peer, address in pairs(args.dial, "dial").items()},
            "data_dir": args.data_dir, "bugs": list(args.bug), "options": {}}
    return json.dumps(plan)


def run_node(system: str, argv: list[str] | None, parse: Callable[[str], NodeConfig],
             make_replica: Callable[[ReplicaConfig], Replica], make_service: Callable[[Replica, frozenset[str]], Any],
             ) -> int:
    """The node process of a pysyncobj-based system: parse, start Raft, serve clients until a signal."""
    parser = argparse.ArgumentParser(prog=f"faultbed.cluster.systems.{system}.node", description=f"one {system} node")
    parser.add_argument("--config", help="the NodePlan as JSON (or give the flags below)")
    flags = parser.add_argument_group("the node as flags (as a system file writes it)")
    flags.add_argument("--name")
    flags.add_argument("--listen-host", default="127.0.0.1")
    flags.add_argument("--raft-port", type=int)
    flags.add_argument("--client-port", type=int)
    flags.add_argument("--identities", default="", help="every node's raft address: n1=host:port,n2=...")
    flags.add_argument("--dial", default="", help="where this node reaches each peer's raft port: n2=host:port,...")
    flags.add_argument("--data-dir")
    flags.add_argument("--bug", action="append", default=[])
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        config = parse(args.config if args.config is not None else plan_json_from_flags(args))
        replica_config = config.replica_config()
    except ValueError as exc:
        print(f"{system} node: {exc}", file=sys.stderr)
        return 3
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        replica = make_replica(replica_config)
    except Exception as exc:  # pysyncobj raises SyncObjException('BindError') for a taken port
        log.error("cannot start raft on %s:%d: %s", config.listen_host, config.raft_port, exc)
        return 3
    try:
        server = ClientServer(config.listen_host, config.client_port, make_service(replica, config.bugs))
    except OSError as exc:
        log.error("cannot listen on client port %s:%d: %s", config.listen_host, config.client_port, exc)
        replica.close()
        return 3
    replica.start()
    server.start()
    log.info("started: raft %s (identity %s), client %s:%d, peers %s, data %s, bugs %s",
             f"{config.listen_host}:{config.raft_port}", config.identities[config.name], config.listen_host,
             config.client_port, config.dial, config.data_dir, sorted(config.bugs) or "none")
    while not stop.wait(1.0):
        pass
    server.close()
    replica.close()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_node("raftkv", argv, NodeConfig.from_plan_json, Replica, KVService)

if __name__ == "__main__":
    sys.exit(main())
