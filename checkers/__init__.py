"""Verdicts from histories. Checkers are pure: they never talk to a cluster."""
