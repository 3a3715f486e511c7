"""The ssh backend: a run's nodes on real hosts reached over SSH (docs/REMOTE.md).

Rooms: inventory.py (hosts.toml: hosts and the node -> host mapping), connection.py (the system
`ssh` client with one shared connection per host), testhosts.py (hosts made on this machine
for the tests: containers with an sshd on a private network).
"""
