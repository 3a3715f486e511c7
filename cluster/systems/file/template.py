"""Placeholders in a system file: `{name}`, `{name|filter|...}`, `{{` and `}}` for literal braces.

A template is checked once, when the file loads (every name must be one the context
offers, every filter known), and rendered many times. A string that is exactly one
placeholder without text around it keeps its value's type (for JSON bodies).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
NAME = re.compile(r"[a-z_][a-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def _b64encode(value: Any) -> str:
    return base64.b64encode(_text(value).encode()).decode("ascii")


def _b64decode(value: Any) -> str:
    return base64.b64decode(str(value)).decode()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


# Filters applied left to right; each takes a value and gives a value.
ENCODERS: dict[str, Callable[[Any], Any]] = {
    "json": lambda value: json.dumps(value, separators=(",", ":")),
    "base64": _b64encode,
    "url": lambda value: urllib.parse.quote(_text(value), safe=""),
}
DECODERS: dict[str, Callable[[Any], Any]] = {
    "json": lambda value: json.loads(value),
    "base64": _b64decode,
}


class TemplateError(ValueError):
    """A template that cannot be used as written; the message says what is wrong."""


@dataclass(frozen=True)
class Placeholder:
    name: str
    filters: tuple[str, ...]


def placeholders(template: str) -> list[Placeholder]:
    """Every placeholder of `template`; TemplateError for a lone brace or an empty one."""
    found = []
    for match in TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise TemplateError(f"lone {token!r} in {template!r} (write {token * 2} for a literal brace)")
        name, *filters = [part.strip() for part in match.group(1).split("|")]
        if not NAME.fullmatch(name):
            raise TemplateError(f"bad placeholder {token!r} in {template!r}")
        found.append(Placeholder(name, tuple(filters)))
    return found


def check(template: str, allowed: Callable[[str], bool], filters: Mapping[str, Any] = ENCODERS,
          describe: str = "") -> None:
    """TemplateError unless every placeholder is `allowed` and every filter known."""
    for placeholder in placeholders(template):
        if not allowed(placeholder.name):
            raise TemplateError(f"unknown placeholder {{{placeholder.name}}} in {template!r}"
                                + (f" (known: {describe})" if describe else ""))
        for name in placeholder.filters:
            if name not in filters:
                raise TemplateError(f"unknown filter {name!r} in {template!r} (known: {', '.join(filters)})")


def render(template: str, values: Mapping[str, Any]) -> Any:
    """`template` with its placeholders replaced; a lone placeholder keeps its value's type."""
    whole = TOKEN.fullmatch(template)
    if whole is not None and whole.group(1) is not None:
        return _value(Placeholder(*_split(whole.group(1))), values)
    def replace(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        return _text(_value(Placeholder(*_split(match.group(1))), values))
    return TOKEN.sub(replace, template)


def render_tree(tree: Any, values: Mapping[str, Any]) -> Any:
    """Render every string inside nested tables and arrays (a JSON body template)."""
    if isinstance(tree, str):
        return render(tree, values)
    if isinstance(tree, dict):
        return {key: render_tree(item, values) for key, item in tree.items()}
    if isinstance(tree, list):
        return [render_tree(item, values) for item in tree]
    return tree


def tree_strings(tree: Any) -> Iterable[str]:
    """Every string inside nested tables and arrays (to check them)."""
    if isinstance(tree, str):
        yield tree
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from tree_strings(item)
    elif isinstance(tree, list):
        for item in tree:
            yield from tree_strings(item)


def extract(document: Any, path: str) -> Any:
    """The value at a dotted path with decoders (`kvs.0.value|base64|json`); None when absent."""
    location, *decoders = [part.strip() for part in path.split("|")]
    value = document
    for step in location.split(".") if location else []:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
        if value is None:
            return None
    for name in decoders:
        value = DECODERS[name](value)
    return value


def check_path(path: str) -> None:
    """TemplateError unless `path` is a dotted path followed by known decoders."""
    location, *decoders = [part.strip() for part in path.split("|")]
    if location and not all(re.fullmatch(r"[A-Za-z0-9_-]+", step) for step in location.split(".")):
        raise TemplateError(f"bad field path {path!r} (write a.b.0.c)")
    for name in decoders:
        if name not in DECODERS:
            raise TemplateError(f"unknown decoder {name!r} in {path!r} (known: {', '.join(DECODERS)})")


def _split(inner: str) -> tuple[str, tuple[str, ...]]:
    name, *filters = [part.strip() for part in inner.split("|")]
    return name, tuple(filters)


def _value(placeholder: Placeholder, values: Mapping[str, Any]) -> Any:
    value = values[placeholder.name]
    for name in placeholder.filters:
        value = ENCODERS[name](value)
    return value
