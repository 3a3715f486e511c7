"""Errors a user can cause; the CLI turns them into one line and exit code 3."""


class FaultbedError(Exception):
    """A user-facing error: bad input, missing binary, a node that never starts."""


class SetupError(FaultbedError):
    """The system under test, the mesh or a tool could not be brought up."""


class HistoryError(FaultbedError):
    """A history file that cannot be read; the message names file and line."""
