"""The Debian mirror this machine's apt uses, read from its sources at build time.

Nothing about a mirror is written into the repository: the base image is built
from whatever /etc/apt/sources.list and /etc/apt/sources.list.d/ name for the
suite, in both formats (one-line `*.list` and deb822 `*.sources`).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

SOURCES_LIST = "/etc/apt/sources.list"
SOURCES_DIR = "/etc/apt/sources.list.d"


@dataclass(frozen=True)
class AptSource:
    """One `deb` source: a repository URI, a suite and its components."""

    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        """The one-line form mmdebstrap accepts as a mirror argument."""
        return " ".join(("deb", self.uri, self.suite, *self.components))


def parse_one_line(text: str) -> list[AptSource]:
    """`deb [options] uri suite component...` lines; deb-src and comments are skipped."""
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            sources.append(AptSource(words[0].rstrip("/"), words[1], tuple(words[2:])))
    return sources


def parse_deb822(text: str) -> list[AptSource]:
    """deb822 stanzas (Types/URIs/Suites/Components); `Enabled: no` stanzas are skipped."""
    sources = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no" or "deb" not in stanza.get("types", "").split():
            continue
        for uri in stanza.get("uris", "").split():
            for suite in stanza.get("suites", "").split():
                sources.append(AptSource(uri.rstrip("/"), suite, tuple(stanza.get("components", "").split())))
    return sources


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif raw[0] in " \t" and key is not None:
            current[key] += " " + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    return stanzas


def host_sources(root: str = "/") -> list[AptSource]:
    """Every enabled `deb` source of this machine, in apt's reading order."""
    sources: list[AptSource] = []
    main_list = os.path.join(root, SOURCES_LIST.lstrip("/"))
    if os.path.exists(main_list):
        sources += parse_one_line(_read(main_list))
    directory = os.path.join(root, SOURCES_DIR.lstrip("/"))
    for path in sorted(glob.glob(os.path.join(directory, "*.list")) + glob.glob(os.path.join(directory, "*.sources"))):
        sources += parse_deb822(_read(path)) if path.endswith(".sources") else parse_one_line(_read(path))
    return sources


def mirror_lines(suite: str, root: str = "/") -> list[str]:
    """mmdebstrap mirror arguments for `suite` and its -updates/-security suites, main only.

    Raises LookupError when this machine's apt has no source for `suite` itself.
    """
    sources = host_sources(root)
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    lines = []
    for name in wanted:
        match = next((s for s in sources if s.suite == name and "main" in s.components), None)
        if match is not None:
            lines.append(AptSource(match.uri, name, ("main",)).line())
    if not any(f" {suite} " in line for line in lines):
        raise LookupError(f"no apt source for Debian {suite} (main) in {SOURCES_LIST} or {SOURCES_DIR}/")
    return lines


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


if __name__ == "__main__":
    import sys

    print("\n".join(mirror_lines(sys.argv[1] if len(sys.argv) > 1 else "bookworm")))
