"""raftkv's journal sync against a real power loss: pysyncobj's FileJournal over faultbed-diskfs."""

from __future__ import annotations

import os

import pytest
from pysyncobj.journal import FileJournal

from faultbed.cluster.disk import DiskMount
from faultbed.cluster.systems.raftkv.durability import JournalSync

pytestmark = pytest.mark.integration


def test_synced_entries_survive_a_power_loss_and_later_ones_do_not(tmp_path):
    with DiskMount("n1", str(tmp_path / "disk"), str(tmp_path / "mnt")) as mount:
        path = os.path.join(mount.mountpoint, "raft.journal")
        journal = FileJournal(path)
        sync = JournalSync()
        sync.attach(journal)
        for index in (1, 2, 3):
            journal.add(b"cmd%d" % index, index, 1)
        sync.sync()
        sync.sync()  # nothing changed since: no second msync
        journal.add(b"cmd4", 4, 1)  # never synced
        assert sync.syncs == 2  # at attach (the new file's header), then after the 3 entries
        mount.power_loss()  # the mapping lives on in this process: only the disk counts
        recovered = FileJournal(os.path.join(mount.backing, "raft.journal"))
        assert [recovered[i] for i in range(len(recovered))] == [(b"cmd%d" % i, i, 1) for i in (1, 2, 3)]


def test_without_sync_a_power_loss_leaves_an_empty_journal_pysyncobj_cannot_open(tmp_path):
    with DiskMount("n1", str(tmp_path / "disk"), str(tmp_path / "mnt")) as mount:
        journal = FileJournal(os.path.join(mount.mountpoint, "raft.journal"))
        sync = JournalSync(enabled=False)
        sync.attach(journal)
        journal.add(b"cmd1", 1, 1)
        sync.sync()
        assert sync.syncs == 0
        mount.power_loss()
        backing = os.path.join(mount.backing, "raft.journal")
        assert os.path.getsize(backing) == 0, "created (metadata is durable), never written"
        with pytest.raises(ValueError, match="cannot mmap an empty file"):
            FileJournal(backing)
