"""Checkers for Maelstrom's workloads (doc/workloads.md of jepsen-io/maelstrom), judged from faultbed histories.

One module per idea: `ops` (what the checkers share: final reads, canonical values, times), `echo`,
`unique_ids`, `sets` (broadcast and g-set: acknowledged values in every final read), `counter` (g-counter
and pn-counter: reads within the bounds the adds allow). The history shapes are the contract in
docs/MAELSTROM.md; lin-kv is judged by the existing `linearizable` checker.
"""
