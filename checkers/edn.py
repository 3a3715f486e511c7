"""A small EDN reader, enough for Jepsen and knossos histories.

Keywords become strings without the colon (`:read` -> "read"), nil/true/false
become None/True/False, vectors and lists become lists, sets become lists, maps
become dicts (a collection used as a key becomes a tuple). Tagged literals keep
their value (`#inst "..."` -> the string); `#_` discards the next form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from faultbed.errors import HistoryError

_TOKEN = re.compile(
    r"""
    [\s,]+ | ;[^\n]*                                  # whitespace, commas, comments
    | (?P<open>\#\{|[\[({])
    | (?P<close>[\])}])
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<discard>\#_)
    | (?P<tag>\#[A-Za-z][^\s,\[\](){}";]*)
    | (?P<char>\\(?:newline|space|tab|return|u[0-9a-fA-F]{4}|\S))
    | (?P<atom>[^\s,\[\](){}";\\]+)
    | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?")
_RATIO = re.compile(r"[+-]?\d+/\d+")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
MAX_DEPTH = 64  # deeper forms are not histories; later recursion (JSON, Go) stays far from its limits
_CLOSER = {"[": "]", "(": ")", "{": "}", "#{": "}"}
_NAMED_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r"}
_STRING_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_ATOMS: dict[str, Any] = {"nil": None, "true": True, "false": False}


@dataclass(frozen=True)
class EdnDocument:
    """Top-level forms and where they start; `inner_offsets` are where the forms
    directly inside the top-level collections start (a history's entries)."""

    forms: list[Any]
    offsets: list[int]
    inner_offsets: list[int]


@dataclass
class _Open:
    """A collection being read, with where its forms start when someone asks."""

    opener: str
    start: int
    items: list[Any] = field(default_factory=list)
    item_offsets: list[int] | None = None
    discard: int = 0  # how many following forms `#_` drops


def read_edn(text: str, path: str = "<edn>") -> EdnDocument:
    """Read every form of an EDN text; a syntax error raises HistoryError naming path:line."""
    top = _Open("", 0, item_offsets=[])
    inner: list[int] = []
    stack = [top]
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None or kind == "tag":
            continue  # a tagged literal keeps its value: #inst "..." is the string
        start = match.start()
        if kind == "open":
            if len(stack) > MAX_DEPTH:
                raise HistoryError(f"{path}:{line_of(text, start)}: forms nested deeper than {MAX_DEPTH} levels")
            stack.append(_Open(match.group(), start, item_offsets=inner if len(stack) == 1 else None))
            continue
        if kind == "discard":
            stack[-1].discard += 1
            continue
        if kind == "close":
            if len(stack) == 1 or _CLOSER[stack[-1].opener] != match.group():
                raise HistoryError(f"{path}:{line_of(text, start)}: unexpected {match.group()!r}")
            closed = stack.pop()
            value, start = _finish(closed, text, path), closed.start
        elif kind in _READERS:
            try:
                value = _READERS[kind](match.group())
            except (ValueError, ArithmeticError) as exc:  # \uzz, 1/0, a 5,000-digit integer
                raise HistoryError(f"{path}:{line_of(text, start)}: cannot read {match.group()[:40]!r}: "
                                   f"{str(exc)[:120]}") from exc
        else:
            raise HistoryError(f"{path}:{line_of(text, start)}: unexpected character {match.group()!r}")
        _emit(stack[-1], value, start)
    if len(stack) > 1:
        raise HistoryError(f"{path}:{line_of(text, stack[-1].start)}: {stack[-1].opener!r} is never closed")
    return EdnDocument(top.items, top.item_offsets or [], inner)


def _emit(level: _Open, value: Any, start: int) -> None:
    if level.discard:
        level.discard -= 1
        return
    level.items.append(value)
    if level.item_offsets is not None:
        level.item_offsets.append(start)


def _finish(level: _Open, text: str, path: str) -> Any:
    if level.opener != "{":
        return level.items
    items = level.items
    if len(items) % 2:
        raise HistoryError(f"{path}:{line_of(text, level.start)}: a map needs an even number of forms")
    return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _string(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
        elif body[i + 1] == "u":
            digits = body[i + 2 : i + 6]
            if not _HEX4.fullmatch(digits):
                raise ValueError(f"bad escape \\u{digits}")
            out.append(chr(int(digits, 16)))
            i += 6
        else:
            out.append(_STRING_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
    return "".join(out)


def _atom(token: str) -> Any:
    if token in _ATOMS:
        return _ATOMS[token]
    if token[0] == ":":
        return token[1:]
    if _INT.fullmatch(token):
        return int(token.rstrip("N"))
    if _FLOAT.fullmatch(token):
        return float(token.rstrip("M"))
    if _RATIO.fullmatch(token):
        numerator, denominator = token.split("/")
        return int(numerator) / int(denominator)  # 1/0 and huge ratios raise ArithmeticError
    return token  # a symbol


def _char(token: str) -> str:
    name = token[1:]
    if name in _NAMED_CHARS:
        return _NAMED_CHARS[name]
    if len(name) == 5 and name[0] == "u":
        return chr(int(name[1:], 16))
    return name


_READERS: dict[str, Callable[[str], Any]] = {"string": _string, "atom": _atom, "char": _char}


def line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1
