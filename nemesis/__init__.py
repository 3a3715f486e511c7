"""Faults and schedules: partition topologies (grudge), fault kinds (faults), seeded schedules (schedule)."""
