"""One TOML table being read: typed getters that name the file and key on error, and unknown keys refused."""

from __future__ import annotations

from typing import Any

from faultbed.cluster.systems.file.schema import SystemFileError


class Table:
    """One TOML table being read: typed getters that name the key on error, and a check for leftovers."""

    def __init__(self, path: str, where: str, data: Any) -> None:
        self.path = path
        self.where = where
        if not isinstance(data, dict):
            self.fail(where, f"must be a table, not {_kind(data)}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def fail(self, key: str, what: str) -> None:
        raise SystemFileError(f"{self.path}: {key}: {what}")

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.data:
            if required:
                self.fail(self.key(name), "missing (required)")
            return default
        value = self.data[name]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.fail(self.key(name), f"must be a number, not {_kind(value)}")
        if not isinstance(value, kind):
            self.fail(self.key(name), f"must be {_kind_name(kind)}, not {_kind(value)}")
        return value

    def text(self, name: str, default: str | None = None, required: bool = False) -> str:
        return self.get(name, str, default, required)  # type: ignore[no-any-return]

    def strings(self, name: str, required: bool = False, nonempty: bool = False) -> tuple[str, ...]:
        value = self.get(name, list, None, required)
        if value is None:
            return ()
        if not all(isinstance(item, str) for item in value):
            self.fail(self.key(name), "must be a list of strings")
        if nonempty and not value:
            self.fail(self.key(name), "must not be empty")
        return tuple(value)

    def number(self, name: str, default: float | None = None) -> float | None:
        value = self.get(name, (int, float), default)
        if value is not None and value <= 0:
            self.fail(self.key(name), "must be positive")
        return None if value is None else float(value)

    def table(self, name: str, required: bool = False) -> "Table | None":
        self.used.add(name)
        if name not in self.data:
            if required:
                self.fail(self.key(name), "missing (required)")
            return None
        return Table(self.path, self.key(name), self.data[name])

    def string_map(self, name: str) -> dict[str, str]:
        sub = self.table(name)
        if sub is None:
            return {}
        for key, value in sub.data.items():
            if not isinstance(value, str):
                sub.fail(sub.key(key), f"must be a string, not {_kind(value)}")
        sub.used.update(sub.data)
        return dict(sub.data)

    def done(self) -> None:
        """SystemFileError for any key nobody asked for: typos must not pass silently."""
        for name in self.data:
            if name not in self.used:
                self.fail(self.key(name), "unknown key")


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if set(kinds) == {int, float}:
        return "a number"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
