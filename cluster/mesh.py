"""The Toxiproxy mesh: one proxy per directed node pair (and port); partitions and link faults.

Node `a` reaches node `b` only through the proxies `a->b` (one per peer port).
On proxy `a->b` the *upstream* stream carries a's bytes to b and the
*downstream* stream carries b's bytes back to a. Some systems (pysyncobj) open
one connection per pair, in one direction only, and carry both directions'
traffic on it, so a grudge "a drops b's traffic" is applied to both places
where b's bytes travel towards a:

    downstream of a->b   (b's answers on connections a opened)
    upstream   of b->a   (b's bytes on connections b opened)

Partition modes:

- blackhole: a `timeout` toxic with timeout 0 on those streams; established
  connections stay open and carry nothing, like dropped packets. Removing the
  toxic (heal) makes Toxiproxy close the affected connections.
- reject: proxies are disabled (connections close, new ones are refused). A
  proxy cannot refuse one direction of a connection, so in reject mode "a drops
  b's traffic" disables b->a (b can no longer connect to a) and, unless a->b is
  disabled too (a symmetric cut), blackholes the downstream of a->b (a may still
  connect to b and send, but hears nothing back). A symmetric cut simply
  disables both proxies.

Several partitions may be active at once (by name); the mesh applies their
union and, when one ends, only what the others do not still need is undone.
Everything the mesh adds is tracked, so `heal()` is exact.

Toxiproxy's API can wedge (its issues #159, #210, #558): a toxic change on a
link whose receiver does not read (a paused or overloaded node) waits until it
reads, holding the proxy's lock; if the receiver dies meanwhile, that proxy
answers no API call ever again. The mesh keeps the state it means each proxy
to have, so a change that gets no answer is completed by recreating the proxy
in that state (disabled while its toxics go on, so no link can block it), and a
server that stops answering altogether is restarted with every proxy as
recorded (when the backend says how). Each recovery is reported to listeners.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from faultbed.cluster.backend import Link
from faultbed.cluster.toxiproxy import STREAMS, Proxy, ProxyConfig, ToxiproxyClient, ToxiproxyError
from faultbed.errors import FaultbedError

log = logging.getLogger(__name__)

BLACKHOLE, REJECT = "blackhole", "reject"
PARTITION_MODES = (BLACKHOLE, REJECT)
BOTH = "both"
PARTITION_TOXIC = "partition-{stream}"

# Link fault kinds (names as faultbed says them) -> Toxiproxy toxic types.
LINK_TOXICS = {
    "latency": "latency",
    "bandwidth": "bandwidth",
    "slow-close": "slow_close",
    "reset-peer": "reset_peer",
    "slicer": "slicer",
    "limit-data": "limit_data",
}

Grudge = Mapping[str, Iterable[str]]
# (f, value, details): a recovery the mesh made, for the history
RecoveryListener = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class ToxicSpec:
    """A toxic the mesh means a proxy to carry."""

    type: str
    stream: str
    attributes: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class ProxyState:
    """What the mesh means one proxy to be: enabled or not, and its toxics by name."""

    enabled: bool = True
    toxics: tuple[tuple[str, ToxicSpec], ...] = ()

    def with_toxic(self, name: str, toxic: ToxicSpec) -> "ProxyState":
        return replace(self, toxics=tuple((n, t) for n, t in self.toxics if n != name) + ((name, toxic),))

    def without_toxic(self, name: str) -> "ProxyState":
        return replace(self, toxics=tuple((n, t) for n, t in self.toxics if n != name))

    def matches(self, proxy: Proxy) -> bool:
        """True when the server's view of the proxy is this state."""
        seen = {(t.name, t.type, t.stream) for t in proxy.toxics}
        return proxy.enabled == self.enabled and seen == {(n, t.type, t.stream) for n, t in self.toxics}


@dataclass(frozen=True)
class LinkFault:
    """Toxics added by one `add_link_fault` call: (proxy, toxic name) pairs to remove again."""

    name: str
    kind: str
    attributes: dict[str, Any] = field(hash=False)
    toxics: tuple[tuple[str, str], ...]

    @property
    def links(self) -> tuple[str, ...]:
        return tuple(sorted({proxy for proxy, _ in self.toxics}))


@dataclass(frozen=True)
class PartitionState:
    """What a set of grudges needs: blackholed (proxy, stream) pairs and disabled proxies."""

    blackholed: frozenset[tuple[str, str]] = frozenset()
    disabled: frozenset[str] = frozenset()


class Mesh:
    """The proxies of one run's links on one Toxiproxy server; thread-safe."""

    def __init__(self, client: ToxiproxyClient, links: Sequence[Link],
                 restart_server: Callable[[], ToxiproxyClient] | None = None) -> None:
        """`restart_server` replaces a server that stopped answering and returns its client."""
        self.client = client
        self.links = list(links)
        self.nodes = sorted({link.src for link in self.links} | {link.dst for link in self.links})
        names = [link.name for link in self.links]
        if len(set(names)) != len(names):
            raise ValueError("two links with the same name (src, dst, port)")
        self._lock = threading.RLock()
        self._partitions: dict[str, tuple[dict[str, frozenset[str]], str]] = {}
        self._applied = PartitionState()
        self._faults: dict[str, LinkFault] = {}
        self._fault_ids = itertools.count(1)
        self._by_name = {link.name: link for link in self.links}
        self._state = {link.name: ProxyState() for link in self.links}
        self._restart_server = restart_server
        self._listeners: list[RecoveryListener] = []
        self.recoveries: list[str] = []  # one line per recovery, in order

    # -- proxies --------------------------------------------------------------
    def create(self) -> None:
        """Create every link's proxy in one call (replacing stale ones of the same name)."""
        self.client.populate(ProxyConfig(l.name, l.listen, l.upstream) for l in self.links)
        log.info("mesh: %d proxies between %d nodes", len(self.links), len(self.nodes))

    def delete(self) -> None:
        """Remove every proxy of the mesh (connections through them close)."""
        with self._lock:
            for link in self.links:
                _ignore_missing(self.client.delete_proxy, link.name)
            self._partitions.clear()
            self._applied = PartitionState()
            self._faults.clear()
            self._state = {link.name: ProxyState() for link in self.links}

    def add_listener(self, listener: RecoveryListener) -> None:
        """Call `listener(f, value, details)` after each recovery (f: toxiproxy-recreated/-restarted)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: RecoveryListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def recorded_state(self, proxy: str) -> ProxyState:
        """The state the mesh means `proxy` to have."""
        with self._lock:
            return self._state[proxy]

    # -- changes, each completed by recovery when Toxiproxy does not answer -----------
    def _add_toxic(self, proxy: str, name: str, type_: str, stream: str, attributes: Mapping[str, Any]) -> None:
        self._change(proxy, self._state[proxy].with_toxic(name, ToxicSpec(type_, stream, dict(attributes))),
                     lambda: self.client.add_toxic(proxy, name, type_, stream, attributes))

    def _remove_toxic(self, proxy: str, name: str) -> None:
        self._change(proxy, self._state[proxy].without_toxic(name), lambda: self.client.remove_toxic(proxy, name),
                     done_status=404)  # already gone: removed

    def _set_enabled(self, proxy: str, enabled: bool) -> None:
        self._change(proxy, replace(self._state[proxy], enabled=enabled),
                     lambda: self.client.set_enabled(proxy, enabled))

    def _change(self, proxy: str, after: ProxyState, call: Callable[[], object], done_status: int | None = None) -> None:
        """Record `after` as the proxy's state and apply it with `call`. No answer: recovery brings the
        proxy to the recorded state; any other refusal restores the state recorded before."""
        before = self._state[proxy]
        self._state[proxy] = after
        try:
            call()
        except ToxiproxyError as exc:
            if done_status is not None and exc.status == done_status:
                return
            if exc.status is None:
                self._recover(proxy, exc)
                return
            self._state[proxy] = before
            raise

    def _recover(self, proxy: str, cause: ToxiproxyError) -> None:
        """Bring `proxy` to its recorded state after a call got no answer: recreate it, else restart the server."""
        log.warning("mesh: %s; recreating proxy %s", cause, proxy)
        try:
            self._recreate(proxy)
        except (ToxiproxyError, MeshStateError) as exc:
            self.restart_server(f"{cause}; recreating {proxy} failed too: {exc}")
            return
        self._recovered("toxiproxy-recreated", f"toxiproxy proxy {proxy} stopped answering; recreated as recorded",
                        proxy=proxy, error=cause.message)

    def _recreate(self, proxy: str) -> None:
        """Delete and create `proxy` again: disabled while its toxics go on (no link can block), then enabled."""
        link, state = self._by_name[proxy], self._state[proxy]
        _ignore_missing(self.client.delete_proxy, proxy)
        self.client.create_proxy(proxy, link.listen, link.upstream, enabled=False)
        for name, toxic in state.toxics:
            self.client.add_toxic(proxy, name, toxic.type, toxic.stream, toxic.attributes)
        if state.enabled:
            self.client.enable_proxy(proxy)
        self._verify(proxy)

    def _verify(self, proxy: str) -> None:
        seen = self.client.get_proxy(proxy)
        if not self._state[proxy].matches(seen):
            raise MeshStateError(f"proxy {proxy} is {_describe_proxy(seen)}, not as recorded")

    def restart_server(self, reason: str) -> None:
        """Replace the Toxiproxy server by a new one with every proxy in its recorded state.

        Raises MeshStateError when the backend cannot restart it or the new one does not take the state.
        """
        with self._lock:
            if self._restart_server is None:
                raise MeshStateError(f"toxiproxy stopped answering and cannot be restarted here: {reason}")
            log.warning("mesh: restarting toxiproxy: %s", reason)
            try:
                self.client = self._restart_server()
                self.client.populate(ProxyConfig(l.name, l.listen, l.upstream, enabled=False) for l in self.links)
                for link in self.links:
                    for name, toxic in self._state[link.name].toxics:
                        self.client.add_toxic(link.name, name, toxic.type, toxic.stream, toxic.attributes)
                    if self._state[link.name].enabled:
                        self.client.enable_proxy(link.name)
                for link in self.links:
                    self._verify(link.name)
            except FaultbedError as exc:
                raise MeshStateError(f"toxiproxy restarted but the mesh could not be re-created: {exc}") from exc
            self._recovered("toxiproxy-restarted", "toxiproxy stopped answering; restarted, every proxy re-created "
                            "as recorded", error=reason)

    def verify(self) -> list[str]:
        """Proxies whose server state differs from the recorded one (or that do not answer); asks each proxy."""
        with self._lock:
            wrong = []
            for link in self.links:
                try:
                    self._verify(link.name)
                except (ToxiproxyError, MeshStateError) as exc:
                    wrong.append(f"{link.name}: {exc}")
            return wrong

    def _recovered(self, f: str, value: str, **details: Any) -> None:
        self.recoveries.append(value)
        for listener in list(self._listeners):
            try:
                listener(f, value, details)
            except Exception:
                log.exception("mesh recovery listener failed")

    def links_between(self, src: str, dst: str) -> list[Link]:
        """The proxies through which `src` reaches `dst` (one per peer port)."""
        return [l for l in self.links if l.src == src and l.dst == dst]

    def links_touching(self, nodes: Iterable[str]) -> list[Link]:
        """Every link from or to one of `nodes`."""
        chosen = set(nodes)
        return [l for l in self.links if l.src in chosen or l.dst in chosen]

    # -- partitions -------------------------------------------------------------
    def partition(self, grudge: Grudge, mode: str = BLACKHOLE, name: str = "partition") -> None:
        """Apply `grudge` ({node: nodes whose traffic it drops}) under `name`, replacing a partition of that name."""
        if mode not in PARTITION_MODES:
            raise FaultbedError(f"unknown partition mode {mode!r} (known: {', '.join(PARTITION_MODES)})")
        normal = self._normal_grudge(grudge)
        with self._lock:
            previous = self._partitions.get(name)
            self._partitions[name] = (normal, mode)
            try:
                self._apply_partitions()
            except FaultbedError:
                # not applied: take it back, so only what was asked before stays (heal retries the rest)
                if previous is None:
                    self._partitions.pop(name, None)
                else:
                    self._partitions[name] = previous
                _best_effort(self._apply_partitions)
                raise
        log.info("mesh: partition %s (%s): %s", name, mode, _describe(normal))

    def end_partition(self, name: str = "partition") -> None:
        """Undo the partition called `name` (what other partitions still need stays)."""
        with self._lock:
            if self._partitions.pop(name, None) is not None:
                self._apply_partitions()

    def partitions(self) -> dict[str, dict[str, frozenset[str]]]:
        with self._lock:
            return {name: dict(grudge) for name, (grudge, _) in self._partitions.items()}

    def _normal_grudge(self, grudge: Grudge) -> dict[str, frozenset[str]]:
        normal: dict[str, frozenset[str]] = {}
        for node, dropped in grudge.items():
            others = frozenset(dropped) - {node}
            unknown = ({node} | others) - set(self.nodes)
            if unknown:
                raise FaultbedError(f"grudge names node(s) not in the mesh: {', '.join(sorted(unknown))}")
            if others:
                normal[node] = others
        return normal

    def _wanted(self) -> PartitionState:
        blackholed: set[tuple[str, str]] = set()
        disabled: set[str] = set()
        for grudge, mode in self._partitions.values():
            for a, dropped in grudge.items():
                for b in dropped:
                    a_to_b = [l.name for l in self.links_between(a, b)]
                    b_to_a = [l.name for l in self.links_between(b, a)]
                    if mode == BLACKHOLE:
                        blackholed.update((p, "downstream") for p in a_to_b)
                        blackholed.update((p, "upstream") for p in b_to_a)
                    else:
                        disabled.update(b_to_a)
                        blackholed.update((p, "downstream") for p in a_to_b)
        # A disabled proxy carries nothing: no need for toxics on it.
        blackholed = {(p, s) for p, s in blackholed if p not in disabled}
        return PartitionState(frozenset(blackholed), frozenset(disabled))

    def _apply_partitions(self) -> None:
        wanted = self._wanted()
        applied = self._applied
        try:
            for proxy in sorted(wanted.disabled - applied.disabled):
                self._set_enabled(proxy, False)
                applied = PartitionState(applied.blackholed, applied.disabled | {proxy})
            for proxy, stream in sorted(wanted.blackholed - applied.blackholed):
                self._add_toxic(proxy, PARTITION_TOXIC.format(stream=stream), "timeout", stream, {"timeout": 0})
                applied = PartitionState(applied.blackholed | {(proxy, stream)}, applied.disabled)
            for proxy, stream in sorted(applied.blackholed - wanted.blackholed):
                self._remove_toxic(proxy, PARTITION_TOXIC.format(stream=stream))
                applied = PartitionState(applied.blackholed - {(proxy, stream)}, applied.disabled)
            for proxy in sorted(applied.disabled - wanted.disabled):
                self._set_enabled(proxy, True)
                applied = PartitionState(applied.blackholed, applied.disabled - {proxy})
        finally:
            self._applied = applied  # exactly what is on the server, even after an error

    # -- link faults ------------------------------------------------------------
    def add_link_fault(self, kind: str, attributes: Mapping[str, Any], links: Iterable[Link] | None = None,
                       stream: str = BOTH, toxic_type: str | None = None) -> LinkFault:
        """Add a toxic of `kind` (latency, bandwidth, slow-close, reset-peer, slicer, limit-data).

        On `links` (default: all) and `stream` (upstream, downstream or both). A fault kind of
        another name gives its Toxiproxy `toxic_type` itself.
        """
        toxic_type = toxic_type or LINK_TOXICS.get(kind)
        if toxic_type is None:
            raise FaultbedError(f"unknown link fault {kind!r} (known: {', '.join(LINK_TOXICS)})")
        streams = STREAMS if stream == BOTH else (stream,)
        if any(s not in STREAMS for s in streams):
            raise FaultbedError(f"stream must be upstream, downstream or both, not {stream!r}")
        chosen = self.links if links is None else list(links)
        with self._lock:
            name = f"{kind}-{next(self._fault_ids)}"
            added: list[tuple[str, str]] = []
            try:
                for link in chosen:
                    for s in streams:
                        toxic = f"{name}-{s}"
                        self._add_toxic(link.name, toxic, toxic_type, s, attributes)
                        added.append((link.name, toxic))
            finally:
                fault = LinkFault(name, kind, dict(attributes), tuple(added))
                if added:
                    self._faults[name] = fault
        log.info("mesh: %s %s on %d stream(s)", kind, dict(attributes), len(added))
        return fault

    def remove_link_fault(self, fault: LinkFault) -> None:
        """Remove the toxics of one link fault (already removed ones are fine)."""
        with self._lock:
            for proxy, toxic in self._faults.get(fault.name, fault).toxics:
                self._remove_toxic(proxy, toxic)
            self._faults.pop(fault.name, None)

    def latency(self, ms: int, jitter_ms: int = 0, links: Iterable[Link] | None = None,
                stream: str = BOTH) -> LinkFault:
        """Delay every chunk by `ms` (+- `jitter_ms`) on each chosen stream."""
        return self.add_link_fault("latency", {"latency": ms, "jitter": jitter_ms}, links, stream)

    def bandwidth(self, kb_per_second: int, links: Iterable[Link] | None = None, stream: str = BOTH) -> LinkFault:
        return self.add_link_fault("bandwidth", {"rate": kb_per_second}, links, stream)

    def slow_close(self, delay_ms: int, links: Iterable[Link] | None = None, stream: str = BOTH) -> LinkFault:
        return self.add_link_fault("slow-close", {"delay": delay_ms}, links, stream)

    def reset_peer(self, timeout_ms: int = 0, links: Iterable[Link] | None = None, stream: str = BOTH) -> LinkFault:
        """Reset (TCP RST) connections `timeout_ms` after data arrives."""
        return self.add_link_fault("reset-peer", {"timeout": timeout_ms}, links, stream)

    def slicer(self, average_size: int, size_variation: int = 0, delay_us: int = 0,
               links: Iterable[Link] | None = None, stream: str = BOTH) -> LinkFault:
        attributes = {"average_size": average_size, "size_variation": size_variation, "delay": delay_us}
        return self.add_link_fault("slicer", attributes, links, stream)

    def limit_data(self, max_bytes: int, links: Iterable[Link] | None = None, stream: str = BOTH) -> LinkFault:
        """Close each connection after `max_bytes` bytes on the stream."""
        return self.add_link_fault("limit-data", {"bytes": max_bytes}, links, stream)

    def link_faults(self) -> list[LinkFault]:
        with self._lock:
            return list(self._faults.values())

    # -- healing ------------------------------------------------------------------
    def heal(self) -> None:
        """Remove every toxic the mesh added and enable every proxy it disabled, then check each proxy.

        A proxy the server shows otherwise is recreated clean; if that fails the server is
        restarted clean (MeshStateError only when even that fails).
        """
        with self._lock:
            for fault in list(self._faults.values()):
                _best_effort(lambda: self.remove_link_fault(fault))
            self._partitions.clear()
            _best_effort(self._apply_partitions)
            self._faults.clear()
            self._applied = PartitionState()
            self._state = {link.name: ProxyState() for link in self.links}
            for line in self.verify():
                proxy = line.split(":", 1)[0]
                try:
                    self._recreate(proxy)
                except (ToxiproxyError, MeshStateError) as exc:
                    self.restart_server(f"healing: {line}; recreating it failed: {exc}")
                    break
                self._recovered("toxiproxy-recreated", f"toxiproxy proxy {proxy} was not healed; recreated clean",
                                proxy=proxy, error=line)
        log.info("mesh: healed")

    def is_healed(self) -> bool:
        """True when the server shows no toxic and no disabled proxy on the mesh's links (asks the server)."""
        proxies = self.client.proxies()
        return all(p.name not in proxies or (proxies[p.name].enabled and not proxies[p.name].toxics)
                   for p in self.links)


class MeshStateError(FaultbedError):
    """The Toxiproxy server does not hold (and could not be brought to) the state the mesh records."""


def _best_effort(call: Callable[[], None]) -> None:
    try:
        call()
    except FaultbedError as exc:
        log.warning("mesh: %s", exc)


def _describe_proxy(proxy: Proxy) -> str:
    toxics = ", ".join(f"{t.name}" for t in proxy.toxics) or "no toxics"
    return f"{'enabled' if proxy.enabled else 'disabled'} with {toxics}"


def _ignore_missing(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except ToxiproxyError as exc:
        if exc.status != 404:
            raise


def _describe(grudge: Mapping[str, frozenset[str]]) -> str:
    return "; ".join(f"{a} drops {','.join(sorted(b))}" for a, b in sorted(grudge.items())) or "nothing"
