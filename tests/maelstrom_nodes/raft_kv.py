#!/usr/bin/env python3
"""A Maelstrom lin-kv node: a key-value store replicated with Raft, every operation (reads too) through the log.

Raft as in the paper: randomised election timeouts, heartbeats that carry log entries, commit by a majority
of the current term's entries (a new leader appends a no-op), a follower that is not the leader forwards
client requests to the one it knows. Only the current term and the vote are written to disk (VOTE_FILE in
the node's working directory, before the vote is sent), as Raft asks; the log is kept in memory.

A Maelstrom node loses its memory when it is killed, which Raft does not expect: a node that forgot its
log could vote for a candidate lacking an entry it had acknowledged. So a node starts "not ready": it
neither votes nor campaigns until either a majority of its peers report an empty log (a fresh cluster:
nothing was ever committed), or it has copied the whole log of a leader of its current term and a
majority of its peers report no newer term (so that leader held every committed entry). A node that voted
in a term and was killed remembers the vote after the restart (VOTE_FILE), so it never votes twice in a term.

Planted bug: `--stale-reads` lets followers answer reads from their own state, which may lag the leader.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any

from maelstrom_node import (KEY_DOES_NOT_EXIST, PRECONDITION_FAILED, TEMPORARILY_UNAVAILABLE, Message, Node, log)

TICK = 0.025
HEARTBEAT = 0.06
ELECTION_TIMEOUT = (0.4, 0.8)
PROBE_EVERY = 0.2
PROBE_FRESH = 1.0     # probe answers older than this are forgotten
MAX_ENTRIES = 100     # per append_entries message
CLIENT_OPS = ("read", "write", "cas")
VOTE_FILE = "raft-vote.json"  # {"term": ..., "voted_for": ...}: what survives a kill


class RaftKV:
    def __init__(self, node: Node, stale_reads: bool) -> None:
        self.node = node
        self.stale_reads = stale_reads
        self.term = 0
        self.voted_for: str | None = None
        self.log: list[dict[str, Any]] = [{"term": 0}]
        self.commit_index = 0
        self.applied = 0
        self.kv: dict[str, Any] = {}
        self.role = "follower"
        self.leader: str | None = None
        self.votes: set[str] = set()
        self.next_index: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.deadline = time.monotonic() + random.uniform(*ELECTION_TIMEOUT)
        self.last_heartbeat = 0.0
        self.last_probe = 0.0
        self.ready = False
        self.caught_up_term = -1
        self.probes: dict[str, tuple[int, bool, float]] = {}  # peer -> (term, empty log, when)
        self.pending: dict[str, Message] = {}                 # entry id -> client request awaiting it
        self.ids = 0
        self.load_vote()
        for op in CLIENT_OPS:
            node.handle(op, self.client_request)
        for type_, handler in (("request_vote", self.request_vote), ("vote", self.vote),
                               ("append_entries", self.append_entries), ("appended", self.appended),
                               ("probe", self.probe), ("probe_ok", self.probe_ok)):
            node.handle(type_, handler)
        node.on_init(self.started)
        node.every(TICK, self.tick)

    # --- helpers -------------------------------------------------------------------------------------
    @property
    def last_index(self) -> int:
        return len(self.log) - 1

    def load_vote(self) -> None:
        try:
            with open(VOTE_FILE, encoding="utf-8") as fh:
                saved = json.load(fh)
        except FileNotFoundError:
            return
        self.term, self.voted_for = int(saved["term"]), saved["voted_for"]
        log(f"remembered term {self.term}, voted for {self.voted_for}")

    def save_vote(self) -> None:
        """Term and vote to disk before anyone hears of them (a kill loses only what was never said)."""
        partial = f"{VOTE_FILE}.partial"
        with open(partial, "w", encoding="utf-8") as fh:
            json.dump({"term": self.term, "voted_for": self.voted_for}, fh)
        os.replace(partial, VOTE_FILE)

    def step_down(self, term: int) -> None:
        if term > self.term:
            self.term, self.voted_for = term, None
            self.save_vote()
        if self.role != "follower":
            log(f"{self.node.node_id}: follower in term {self.term}")
        self.role = "follower"

    def reset_election_timer(self) -> None:
        self.deadline = time.monotonic() + random.uniform(*ELECTION_TIMEOUT)

    def started(self) -> None:
        if len(self.node.node_ids) == 1:
            self.ready = True

    # --- readiness after a start (see the module's docstring) ----------------------------------------
    def probe(self, message: Message) -> None:
        self.node.send(message["src"], {"type": "probe_ok", "term": self.term, "empty": self.last_index == 0})

    def probe_ok(self, message: Message) -> None:
        body = message["body"]
        if body["term"] > self.term:
            self.step_down(body["term"])
        self.probes[message["src"]] = (body["term"], bool(body["empty"]), time.monotonic())
        self.check_ready()

    def check_ready(self) -> None:
        if self.ready:
            return
        now = time.monotonic()
        fresh = [(term, empty) for term, empty, when in self.probes.values() if now - when < PROBE_FRESH]
        majority = self.node.majority()
        if sum(1 for _, empty in fresh if empty) >= majority and self.last_index == 0:
            reason = "a majority of peers have empty logs"
        elif self.caught_up_term == self.term and sum(1 for term, _ in fresh if term <= self.term) >= majority:
            reason = f"caught up with the leader of term {self.term}"
        else:
            return
        self.ready = True
        self.reset_election_timer()
        log(f"{self.node.node_id}: ready ({reason})")

    # --- elections -----------------------------------------------------------------------------------
    def tick(self) -> None:
        now = time.monotonic()
        if not self.ready and now - self.last_probe > PROBE_EVERY:
            self.last_probe = now
            for peer in self.node.peers:
                self.node.send(peer, {"type": "probe"})
        if self.role == "leader":
            if now - self.last_heartbeat > HEARTBEAT:
                self.last_heartbeat = now
                self.replicate()
        elif self.ready and now > self.deadline:
            self.campaign()

    def campaign(self) -> None:
        self.term += 1
        self.role, self.voted_for, self.votes, self.leader = "candidate", self.node.node_id, {self.node.node_id}, None
        self.save_vote()
        self.reset_election_timer()
        log(f"{self.node.node_id}: campaigning in term {self.term}")
        for peer in self.node.peers:
            self.node.send(peer, {"type": "request_vote", "term": self.term, "last_log_index": self.last_index,
                                  "last_log_term": self.log[-1]["term"]})
        self.win_if_elected()

    def request_vote(self, message: Message) -> None:
        body, candidate = message["body"], message["src"]
        if body["term"] > self.term:
            self.step_down(body["term"])
        up_to_date = (body["last_log_term"], body["last_log_index"]) >= (self.log[-1]["term"], self.last_index)
        granted = (self.ready and body["term"] == self.term and self.voted_for in (None, candidate)
                   and up_to_date)
        if granted:
            self.voted_for = candidate
            self.save_vote()
            self.reset_election_timer()
        self.node.send(candidate, {"type": "vote", "term": self.term, "granted": granted})

    def vote(self, message: Message) -> None:
        body = message["body"]
        if body["term"] > self.term:
            self.step_down(body["term"])
        elif self.role == "candidate" and body["term"] == self.term and body["granted"]:
            self.votes.add(message["src"])
            self.win_if_elected()

    def win_if_elected(self) -> None:
        if self.role != "candidate" or len(self.votes) < self.node.majority():
            return
        self.role, self.leader = "leader", self.node.node_id
        self.next_index = {p: self.last_index + 1 for p in self.node.peers}
        self.match_index = {p: 0 for p in self.node.peers}
        self.log.append({"term": self.term, "op": {"type": "noop"}})
        log(f"{self.node.node_id}: leader in term {self.term}")
        self.replicate()
        self.advance_commit()

    # --- replication ---------------------------------------------------------------------------------
    def replicate(self) -> None:
        for peer in self.node.peers:
            prev = self.next_index[peer] - 1
            entries = self.log[prev + 1:prev + 1 + MAX_ENTRIES]
            self.node.send(peer, {"type": "append_entries", "term": self.term, "prev_log_index": prev,
                                  "prev_log_term": self.log[prev]["term"], "entries": entries,
                                  "leader_commit": self.commit_index, "leader_last": self.last_index})

    def append_entries(self, message: Message) -> None:
        body, leader = message["body"], message["src"]
        if body["term"] < self.term:
            self.node.send(leader, {"type": "appended", "term": self.term, "success": False, "hint": 0})
            return
        self.step_down(body["term"])
        self.leader = leader
        self.reset_election_timer()
        prev = body["prev_log_index"]
        if prev > self.last_index or self.log[prev]["term"] != body["prev_log_term"]:
            hint = min(prev, self.last_index + 1)
            if hint <= self.last_index:  # skip back over the whole conflicting term
                conflicting = self.log[hint]["term"]
                while hint > 1 and self.log[hint - 1]["term"] == conflicting:
                    hint -= 1
            self.node.send(leader, {"type": "appended", "term": self.term, "success": False, "hint": max(1, hint)})
            return
        for offset, entry in enumerate(body["entries"]):
            index = prev + 1 + offset
            if index <= self.last_index and self.log[index]["term"] != entry["term"]:
                del self.log[index:]
            if index > self.last_index:
                self.log.append(entry)
        match = prev + len(body["entries"])
        if body["leader_commit"] > self.commit_index:
            self.commit_index = max(self.commit_index, min(body["leader_commit"], match))
            self.apply()
        if match >= body["leader_last"]:
            self.caught_up_term = self.term
            self.check_ready()
        self.node.send(leader, {"type": "appended", "term": self.term, "success": True, "match": match})

    def appended(self, message: Message) -> None:
        body, peer = message["body"], message["src"]
        if body["term"] > self.term:
            self.step_down(body["term"])
            return
        if self.role != "leader" or body["term"] != self.term:
            return
        if body["success"]:
            self.match_index[peer] = max(self.match_index[peer], body["match"])
            self.next_index[peer] = max(self.next_index[peer], body["match"] + 1)
            self.advance_commit()
        else:
            self.next_index[peer] = max(1, min(self.next_index[peer] - 1, body["hint"]))

    def advance_commit(self) -> None:
        for index in range(self.last_index, self.commit_index, -1):
            if self.log[index]["term"] != self.term:
                break
            if 1 + sum(1 for m in self.match_index.values() if m >= index) >= self.node.majority():
                self.commit_index = index
                self.apply()
                break

    # --- the state machine ---------------------------------------------------------------------------
    def apply(self) -> None:
        while self.applied < self.commit_index:
            self.applied += 1
            entry = self.log[self.applied]
            result = self.execute(entry["op"])
            request = self.pending.pop(entry.get("id", ""), None)
            if request is not None:
                self.node.reply(request, result)

    def execute(self, op: dict[str, Any]) -> dict[str, Any]:
        kind = op["type"]
        if kind == "noop":
            return {}
        key = json.dumps(op["key"], sort_keys=True)
        if kind == "write":
            self.kv[key] = op["value"]
            return {"type": "write_ok"}
        if key not in self.kv:
            return {"type": "error", "code": KEY_DOES_NOT_EXIST, "text": f"no key {op['key']}"}
        if kind == "read":
            return {"type": "read_ok", "value": self.kv[key]}
        if self.kv[key] != op["from"]:
            return {"type": "error", "code": PRECONDITION_FAILED,
                    "text": f"expected {op['from']!r}, found {self.kv[key]!r}"}
        self.kv[key] = op["to"]
        return {"type": "cas_ok"}

    def client_request(self, message: Message) -> None:
        body = message["body"]
        if self.stale_reads and body["type"] == "read" and self.role != "leader":
            self.node.reply(message, self.execute(dict(body)))  # the bug: a follower's state may lag
            return
        if self.role == "leader":
            self.ids += 1
            entry_id = f"{self.node.node_id}:{self.term}:{self.ids}"
            op = {k: body[k] for k in ("type", "key", "value", "from", "to") if k in body}
            self.log.append({"term": self.term, "op": op, "id": entry_id})
            self.pending[entry_id] = message
        elif self.leader is not None and self.leader != self.node.node_id and not body.get("forwarded"):
            self.forward(message, self.leader)
        else:
            self.node.error(message, TEMPORARILY_UNAVAILABLE, "no leader known")

    def forward(self, message: Message, leader: str) -> None:
        body = {k: v for k, v in message["body"].items() if k != "msg_id"}

        def relay(answer: Message) -> None:
            self.node.reply(message, {k: v for k, v in answer["body"].items() if k != "in_reply_to"})
        self.node.rpc(leader, dict(body, forwarded=True), relay)


def main() -> None:
    node = Node()
    RaftKV(node, stale_reads="--stale-reads" in sys.argv[1:])
    node.run()


if __name__ == "__main__":
    main()
