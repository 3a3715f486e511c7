"""One registry for every kind of plugin: systems, workloads, fault kinds, checkers, backends.

faultbed's own plugins and everyone else's come through the same door: an entry point in the
group `faultbed.<kind>` (faultbed's are in its own pyproject.toml). A system can also be named
by a file (`--system ./mykv.toml`) or by `module:attribute`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import sys
import time
import zlib
from typing import TYPE_CHECKING, Any

from faultbed.errors import FaultbedError

if TYPE_CHECKING:
    import importlib.metadata

    from faultbed.cluster.systems import System

KINDS = ("systems", "workloads", "faults", "checkers", "backends")
GROUP_PREFIX = "faultbed."
BUILT_IN = "built-in"
OWN_DISTRIBUTION = "faultbed"
SYSTEM_FILE_SUFFIX = ".toml"


class Plugin:
    """A registered plugin: what it is, its name, where it came from and how to load it.
    (A plain class: a dataclass costs half a millisecond to make, at the start of every command
    that looks a plugin up.)"""

    __slots__ = ("kind", "name", "origin", "target")

    def __init__(self, kind: str, name: str, origin: str, target: str) -> None:
        self.kind = kind
        self.name = name
        self.origin = origin    # "built-in", "entry point (dist version)" or "file PATH"
        self.target = target    # "module:attribute", or the file's path

    def __repr__(self) -> str:
        return f"Plugin({self.kind!r}, {self.name!r}, {self.origin!r}, {self.target!r})"

    def load(self) -> Any:
        return _load(self.kind, self.name)


def _origin(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = entry_point.dist
    if dist is None:
        return "entry point"
    if dist.metadata["Name"] == OWN_DISTRIBUTION:
        return BUILT_IN
    return f"entry point ({dist.metadata['Name']} {dist.version})"


@functools.lru_cache(maxsize=None)
def registered(kind: str) -> dict[str, Plugin]:
    """Every plugin of `kind` installed as an entry point, by name (faultbed's own first)."""
    if kind not in KINDS:
        raise FaultbedError(f"unknown plugin kind {kind!r} (known: {', '.join(KINDS)})")
    points = sorted(_entry_points().get(GROUP_PREFIX + kind, ()), key=lambda p: (p[2] != BUILT_IN, p[0]))
    found: dict[str, Plugin] = {}
    for name, target, origin in points:
        # The first registration of a name wins: a third-party plugin cannot shadow a built-in.
        found.setdefault(name, Plugin(kind, name, origin, target))
    return found


CACHE_VERSION = 1


@functools.lru_cache(maxsize=None)
def _entry_points() -> dict[str, list[tuple[str, str, str]]]:
    """Group -> (name, "module:attribute", origin) of every entry point in a faultbed.* group.

    Reading them means reading the entry points of every installed distribution (12-15 ms for
    the ~110 of a Debian Python), every time faultbed starts; so the table is kept in the user's
    cache directory under a key made of the places distributions are found and the modification
    times of their entry_points.txt files: installing, removing or reinstalling a distribution
    changes the key. Without a writable cache directory it is read every time."""
    key = _installation_key()
    path = _cache_path(key)
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                cached = json.load(fh)
            table = {group: [(name, target, origin) for name, target, origin in points]
                     for group, points in cached["groups"].items()} if cached.get("key") == key else None
            if table is not None and all(isinstance(text, str) for points in table.values()
                                         for point in points for text in point):
                with contextlib.suppress(OSError):
                    os.utime(path)  # seen: kept (_forget_old_tables)
                return table
        except (OSError, ValueError, AttributeError, TypeError, KeyError):
            pass  # absent, unreadable or not a table: read the distributions
    groups = _read_entry_points()
    if path is not None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.{os.getpid()}.partial"
            with open(partial, "w", encoding="utf-8") as fh:
                json.dump({"key": key, "groups": groups}, fh)
            os.replace(partial, path)
            _forget_old_tables(os.path.dirname(path))
        except OSError:
            pass  # a read-only home: read every time
    return groups


def _read_entry_points() -> dict[str, list[tuple[str, str, str]]]:
    import importlib.metadata  # here: reading entry points costs start-up time few commands need

    by_distribution: dict[int, str] = {}  # a distribution's metadata is parsed anew on every read: once each

    def origin(point: importlib.metadata.EntryPoint) -> str:
        if id(point.dist) not in by_distribution:
            by_distribution[id(point.dist)] = _origin(point)
        return by_distribution[id(point.dist)]

    everything = importlib.metadata.entry_points()  # one pass over the distributions, every group
    return {group: [(point.name, point.value, origin(point)) for point in everything.select(group=group)]
            for group in sorted(everything.groups) if group.startswith(GROUP_PREFIX)}


def _installation_key() -> str:
    """Where distributions are found, and when each one's entry points were last written."""
    parts = [CACHE_VERSION, sys.version, sys.path]
    stat = os.stat
    for directory in sys.path:
        where = directory or "."
        try:
            names = os.listdir(where)  # names only: scandir's entries cost a third more
        except OSError:
            continue
        for name in sorted(name for name in names if name.endswith((".dist-info", ".egg-info"))):
            path = f"{where}/{name}"  # not os.path.join: ~110 of them at every start (Debian's dist-packages)
            try:
                parts.append((path, stat(f"{path}/entry_points.txt").st_mtime_ns))
            except OSError:
                parts.append((path, 0))
    return json.dumps(parts)  # compared whole; hashlib would cost 4 ms of start-up to import


def _forget_old_tables(directory: str, days: float = 30) -> None:
    """Tables of installations not seen for a while (a clone's venv since removed) go."""
    old = time.time() - days * 86400
    for entry in os.scandir(directory):
        if entry.name.startswith("entry-points-") and entry.stat().st_mtime < old:
            os.unlink(entry.path)


def _cache_path(key: str) -> str | None:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(root):
        return None
    return os.path.join(root, "faultbed", f"entry-points-{zlib.crc32(key.encode()):08x}.json")


def names(kind: str) -> list[str]:
    return sorted(registered(kind))


def load_attribute(target: str) -> Any:
    """`module:attribute` (attribute may be dotted) -> the object, or FaultbedError."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise FaultbedError(f"{target!r} is not of the form module:attribute")
    if os.getcwd() not in sys.path:  # as `python -m` does: the user's own modules are found from here
        sys.path.append(os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FaultbedError(f"cannot import {module_name!r} for {target!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError as exc:
            raise FaultbedError(f"{module_name!r} has no attribute {attribute!r}") from exc
    return value


@functools.lru_cache(maxsize=None)
def _load(kind: str, name: str) -> Any:
    plugins = registered(kind)
    if name not in plugins:
        known = ", ".join(sorted(plugins)) or "none"
        raise FaultbedError(f"unknown {kind[:-1]} {name!r} (known: {known})")
    try:
        return load_attribute(plugins[name].target)
    except FaultbedError as exc:
        raise FaultbedError(f"{kind[:-1]} {name!r} ({plugins[name].origin}) cannot be loaded: {exc}") from exc


def load(kind: str, name: str) -> Any:
    """The plugin object of `kind` registered as `name`, or FaultbedError naming the known ones."""
    return _load(kind, name)


def description(plugin: Any) -> str:
    """One line about a plugin: its `description`, or the first line of its docstring."""
    text = getattr(plugin, "description", None) or (getattr(plugin, "__doc__", None) or "")
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def is_system_file(reference: str) -> bool:
    """True for a `--system` value that names a system file (a path), not a name or module:attribute."""
    return reference.endswith(SYSTEM_FILE_SUFFIX) or "/" in reference


def system_label(reference: str) -> str:
    """A short name for a `--system` value, for directory and test names: the file's stem, the module."""
    if is_system_file(reference):
        return os.path.splitext(os.path.basename(reference))[0] or "system"
    if ":" in reference:
        return reference.partition(":")[0].rpartition(".")[2] or "system"
    return reference


SYSTEM_MEMBERS = ("name", "ports", "peer_ports", "client_port", "bugs", "workloads", "traits", "command",
                  "open_client")  # the System protocol (faultbed.cluster.systems)


def system(reference: str) -> "System":
    """The system a `--system` value names: a registered name, a system file, or module:attribute."""
    if is_system_file(reference):
        from faultbed.cluster.systems.file import load_system_file
        return load_system_file(reference)
    found = load_attribute(reference) if ":" in reference else load("systems", reference)
    missing = [member for member in SYSTEM_MEMBERS if not hasattr(found, member)]
    if missing:  # e.g. --system json:dumps: bad input (exit 3), not a crash deep inside the run
        raise FaultbedError(f"{reference!r} is not a system: it has no {', '.join(missing)}")
    return found  # type: ignore[no-any-return]


def workload(name: str) -> Any:
    return load("workloads", name)


def backend(name: str) -> Any:
    return load("backends", name)
