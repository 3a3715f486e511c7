"""etcd: Debian's etcd-server (3.4), described entirely by the system file etcd.toml next to this module.

The built-in name `etcd` loads that file, exactly as `--system ./etcd.toml` would; a user
copies it (examples/systems/etcd.toml links to it) to start describing their own system.
Its client is the generic http client over etcd's v3 JSON gateway (base64 keys and values,
a transaction for cas); its `serializable-reads` bug is a client overlay in [bugs].
"""

from __future__ import annotations

import os

from faultbed.cluster.systems.file import FileSystem, load_system_file

SYSTEM_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "etcd.toml")
SERIALIZABLE_READS = "serializable-reads"

SYSTEM: FileSystem = load_system_file(SYSTEM_FILE)
