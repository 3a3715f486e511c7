"""faultbed: a Jepsen-style fault-injection testbed."""

__version__ = "0.1.0"
