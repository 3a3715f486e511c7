"""Errors a user can cause; the CLI turns them into one line and exit code 3."""

from __future__ import annotations

from typing import Any


class FaultbedError(Exception):
    """A user-facing error: bad input, missing binary, a node that never starts."""


class SetupError(FaultbedError):
    """The system under test, the mesh or a tool could not be brought up."""


class HistoryError(FaultbedError):
    """A history file that cannot be read; the message names file and line."""


def read_toml(path: str, where: str, error: type[FaultbedError] = FaultbedError,
              missing: str = "no such file") -> dict[str, Any]:
    """The TOML file a user wrote (a system file, an inventory), or `error` in one line starting `where`."""
    import tomllib  # here: every command imports this module, few read TOML

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{where}: {missing}") from None
    except OSError as exc:
        raise error(f"{where}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not valid TOML: not UTF-8 ({exc.reason})") from None
