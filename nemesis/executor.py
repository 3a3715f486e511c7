"""Runs a Schedule against a running cluster and records every start and stop in the history.

One thread per nemesis entry walks that entry's events at their times (so a slow
action of one entry, a rolling restart say, never delays another's); actions on
the mesh and backend are serialized by one lock. Each start and stop becomes a
`process: "nemesis"` info event: `f` is `start-<kind>` / `stop-<kind>`, `value` a
one-line description, and `fault`, `id`, `nodes`, `grudge`, `links`, `error`...
say what and where; a start carries its kind's `color` for the report and the
porcupine annotations. A fault that cannot be applied is recorded as not applied
(`applied: false`, with the error) and the schedule goes on. Recoveries of the
Toxiproxy mesh are recorded as `toxiproxy-recreated` / `toxiproxy-restarted`. A node
that faultbed finds dead although nobody stopped it (the backend notices when it is
about to start it again, and at heal and at the end of the run) is recorded as
`node-exit` with its exit status and the end of its log (`record_node_exits`).
`heal_all()` resumes paused nodes first (a paused node's full sockets block
Toxiproxy's toxic changes), stops what is still active, heals the mesh, asks each
kind of the schedule to heal what it may have left (kill restarts dead nodes),
then waits for the cluster to be ready. It always completes, recording what it
could not do.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from faultbed.cluster.backend import PAUSED
from faultbed.errors import FaultbedError, SetupError
from faultbed.history import HistoryWriter
from faultbed.nemesis.faults import FaultEntry, fault_kind
from faultbed.nemesis.kinds import ActiveFault, FaultContext, FaultKind, Healed, NemesisCluster

if TYPE_CHECKING:
    from faultbed.nemesis.schedule import FaultEvent, Schedule

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 15.0


class ScheduleExecutor:
    """A context manager: `start()` runs the schedule in threads; leaving heals everything, even after an error."""

    def __init__(self, schedule: "Schedule", cluster: NemesisCluster, history: HistoryWriter,
                 ready_timeout: float = 30.0) -> None:
        """The schedule alone decides what happens; its kinds are looked up once, here."""
        unknown = set(schedule.nodes) - set(cluster.nodes)
        if unknown:
            raise FaultbedError(f"schedule names node(s) {sorted(unknown)} the cluster does not have "
                                f"(it has {', '.join(cluster.nodes)})")
        self.schedule = schedule
        self.cluster = cluster
        self.history = history
        self.ctx = FaultContext(cluster, schedule.partition_mode, ready_timeout=ready_timeout,
                                record=self._record_progress, history=history)
        self.errors: list[str] = []
        self._entries: list[FaultEntry] = schedule.entries()
        self._kinds: dict[str, FaultKind[Any]] = {e.kind: fault_kind(e.kind) for e in self._entries}
        self._active: dict[str, tuple[FaultEntry, ActiveFault[Any]]] = {}
        self._starting: dict[str, str] = {}
        self._view: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started_at: float | None = None
        self._healed = False
        cluster.mesh.add_listener(self._record_recovery)

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "ScheduleExecutor":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if self._healed:
                self.stop()
            elif exc_type is None:
                self.heal_all()
            else:
                try:  # heal, but never hide the error that brought us here, and do not wait for readiness
                    self.heal_all(ready_timeout=None)
                except Exception:
                    log.exception("healing after %s failed", getattr(exc_type, "__name__", exc_type))
        finally:
            self.cluster.mesh.remove_listener(self._record_recovery)

    def start(self) -> None:
        """Start the timeline now: event times count from this call."""
        if self._started_at is not None:
            raise RuntimeError("schedule executor already started")
        self._started_at = time.monotonic()
        for entry in self._entries:
            events = self.schedule.events_of(entry.text)
            if not events:
                continue
            thread = threading.Thread(target=self._run_entry, args=(entry, events),
                                      name=f"nemesis-{entry.text}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Stop walking the schedule (faults stay as they are until heal_all); returns promptly."""
        self.ctx.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("nemesis thread %s still busy after %.0fs", thread.name, timeout)

    def done(self) -> bool:
        """True once started and every entry has walked all its events (or was stopped)."""
        return self._started_at is not None and not any(t.is_alive() for t in self._threads)

    def current_faults(self) -> list[str]:
        """A live list (updated in place) of one-line descriptions of the active faults."""
        return self._view

    # -- the timeline -------------------------------------------------------------------------
    def _run_entry(self, entry: FaultEntry, events: list["FaultEvent"]) -> None:
        assert self._started_at is not None
        for event in events:
            delay = self._started_at + event.at - time.monotonic()
            if delay > 0 and self.ctx.stop.wait(delay):
                return
            if self.ctx.stop.is_set():
                return
            if event.action == "start":
                self._start(entry, event.id, event.params)
            else:
                self._stop(event.id)

    def _start(self, entry: FaultEntry, fault_id: str, params: dict[str, Any]) -> None:
        kind = self._kinds[entry.kind]
        with self._lock:
            self._starting[fault_id] = f"starting {entry.text}"
            self._refresh_view()
        try:
            active = kind.start(self.ctx, fault_id, params)
        except Exception as exc:
            log.exception("nemesis %s could not be applied", fault_id)
            self._record(f"start-{entry.kind}", f"{entry.text} not applied: {exc}", entry, fault_id,
                         applied=False, error=str(exc))
            return
        finally:
            with self._lock:
                self._starting.pop(fault_id, None)
                self._refresh_view()
            record_node_exits(self.cluster.backend, self.history)
        with self._lock:
            self._active[fault_id] = (entry, active)
            self._refresh_view()
        self._record(f"start-{entry.kind}", active.summary, entry, fault_id, color=kind.color, **active.details)
        try:  # a long fault (rolling restart) works after its start is recorded
            kind.run(self.ctx, active)
        except Exception as exc:
            log.exception("nemesis %s failed while running", fault_id)
            self._record(f"{entry.kind}-failed", f"{entry.text} failed", entry, fault_id, error=str(exc))

    def _stop(self, fault_id: str) -> None:
        with self._lock:
            found = self._active.get(fault_id)
        if found is None:
            return  # it never started (an error was recorded then)
        entry, active = found
        try:
            summary = self._kinds[entry.kind].stop(self.ctx, active)
        except Exception as exc:
            log.exception("nemesis %s failed to stop", fault_id)
            self._record(f"stop-{entry.kind}", f"{entry.text} failed to stop", entry, fault_id, error=str(exc))
        else:
            self._record(f"stop-{entry.kind}", summary, entry, fault_id)
        record_node_exits(self.cluster.backend, self.history)
        with self._lock:
            self._active.pop(fault_id, None)
            self._refresh_view()

    def _record_progress(self, active: ActiveFault[Any], f: str, value: str, **extra: Any) -> None:
        with self._lock:
            found = self._active.get(active.id)
        if found is not None:
            self._record(f, value, found[0], active.id, **extra)

    def _record_recovery(self, f: str, value: str, details: dict[str, Any]) -> None:
        try:
            self.history.nemesis(f, value, **details)
        except FaultbedError:
            log.warning("history closed; %s not recorded", f)

    def _refresh_view(self) -> None:
        self._view[:] = [a.summary for _, a in self._active.values()] + list(self._starting.values())

    def _record(self, f: str, value: str, entry: FaultEntry, fault_id: str, **extra: Any) -> None:
        if "error" in extra:
            self.errors.append(f"{fault_id}: {extra['error']}")
        try:
            self.history.nemesis(f, value, fault=entry.text, id=fault_id, **extra)
        except FaultbedError:
            log.warning("history closed; nemesis event %s %s not recorded", f, fault_id)

    # -- healing --------------------------------------------------------------------------------
    def heal_all(self, ready_timeout: float | None = 30.0) -> str | None:
        """Stop the schedule and undo every fault; then wait for a leader (unless ready_timeout is None).

        Never raises for a fault it cannot undo: what failed is recorded in the heal event
        (`failed`, `error`) and the rest is still healed. Returns the leader, or None when not
        waited for or the cluster did not become ready (recorded as `ready: false`).
        """
        self.stop()
        with self.ctx.lock:
            record_node_exits(self.cluster.backend, self.history, look=True)
        resumed = self._resume_paused()
        with self._lock:
            still_active = list(self._active)
        for fault_id in still_active:
            self._stop(fault_id)
        with self.ctx.lock:
            actions, problems = self._heal_everything()
        if resumed:
            actions["resumed"] = sorted(set(actions.get("resumed", [])) | set(resumed))
        self._healed = True
        leader: str | None = None
        details: dict[str, Any] = dict(actions)
        if ready_timeout is not None:
            try:
                leader = self.cluster.wait_ready(ready_timeout)
                details.update(ready=True, leader=leader)
            except SetupError as exc:
                log.warning("cluster not ready after healing: %s", exc)
                details.update(ready=False)
                problems.append(str(exc))
        if problems:
            details["error"] = "; ".join(problems)
        network = "network NOT healed" if any(p.startswith("network:") for p in problems) else "network"
        summary = f"healed: {network}" + "".join(
            f", {verb} {','.join(nodes)}" for verb, nodes in actions.items() if nodes)
        try:
            self.history.nemesis("heal", summary, **details)
        except FaultbedError:
            log.warning("history closed; heal not recorded")
        return leader

    def _resume_paused(self) -> list[str]:
        """Resume paused nodes first: Toxiproxy blocks toxic changes on links whose receiver does not read."""
        resumed = []
        backend = self.cluster.backend
        with self.ctx.lock:
            for node in self.cluster.nodes:
                try:
                    if backend.state(node) == PAUSED:
                        backend.resume(node)
                        resumed.append(node)
                except Exception as exc:
                    log.error("resuming %s failed: %s", node, exc)
        return resumed

    def _heal_everything(self) -> tuple[Healed, list[str]]:
        """Mesh healed, then every kind of the schedule heals what it may have left; what was
        done, by verb, and the problems. A node that cannot be healed is listed under `failed`,
        a mesh that cannot be healed (even by restarting Toxiproxy) is a problem; the rest is
        still healed.
        """
        problems: list[str] = []
        try:
            self.cluster.mesh.heal()
        except Exception as exc:
            log.error("healing the network failed: %s", exc)
            problems.append(f"network: {exc}")
            self.errors.append(f"heal network: {exc}")
        done: Healed = {}
        for kind in self._kinds.values():
            try:
                healed = kind.heal(self.ctx)
            except Exception as exc:
                log.exception("healing %s failed", kind.name)
                healed = {"failed": [kind.name]}
                self.errors.append(f"heal {kind.name}: {exc}")
                problems.append(f"{kind.name}: {exc}")
            for verb, nodes in healed.items():
                done.setdefault(verb, []).extend(n for n in nodes if n not in done[verb])
        self.errors.extend(f"heal {node}: failed" for node in done.get("failed", []))
        if done.get("failed"):
            problems.append(f"could not heal {','.join(done['failed'])}")
        with self._lock:
            self._active.clear()
            self._refresh_view()
        return done, problems


def record_node_exits(backend: object, history: HistoryWriter, look: bool = False) -> None:
    """Each exit nobody asked for that the backend noticed (with `look`, after looking at every
    node now) as a `node-exit` event. Backends without the bookkeeping have none."""
    take = getattr(backend, "find_exits" if look else "take_exits", None)
    if take is None:
        return
    try:
        exits = take()
    except Exception as exc:  # a backend that cannot tell must not cost the run
        log.warning("could not look for nodes that exited on their own: %s", exc)
        return
    for found in exits:
        status = found.get("status")
        how = "" if status is None else f" (signal {-status})" if status < 0 else f" (status {status})"
        try:
            history.nemesis("node-exit", f"{found['node']} exited on its own{how}", **found)
        except FaultbedError:
            log.warning("history closed; %s exited on its own%s", found["node"], how)
