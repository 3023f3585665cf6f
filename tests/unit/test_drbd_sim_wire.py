"""The simulated DRBD replication stream into one disk (xenha_lab.sim.drbd.network):
what a SyncTarget's disk holds when resync data waits for before-resync-target while
the source's application writes keep arriving (seen in the lab: acknowledged guest
writes lost after a standby/unstandby, when the held resync data was applied over
newer writes)."""

from __future__ import annotations

from types import SimpleNamespace

from xenha_lab.sim.drbd import network
from xenha_lab.sim.drbd.metadata import Disk


def target(tmp_path):
    node = SimpleNamespace(net=str(tmp_path / "net"), token="bob")
    disk = Disk(str(tmp_path / "disks"), "/dev/vg0/r0")
    disk.fresh(1)
    disk.save()
    return node, disk


def test_resync_data_held_for_before_resync_target_never_overwrites_a_later_write(tmp_path):
    node, disk = target(tmp_path)
    network.send(node, "bob", disk.key, {"type": "resync", "sid": "s1", "full": False,
                                        "blocks": {1: b"old 1", 2: b"old 2"}})
    network.send(node, "bob", disk.key, {"type": "write", "blk": 1, "data": b"new 1"})
    network.receive(node, disk)                       # before-resync-target has not run: data held
    assert disk.blocks == {1: b"new 1"}
    disk.rs_ready.append("s1")
    network.receive(node, disk)
    assert disk.blocks == {1: b"new 1", 2: b"old 2"}
    assert disk.received == ["s1"]


def test_a_held_full_resync_keeps_later_writes_too(tmp_path):
    node, disk = target(tmp_path)
    network.send(node, "bob", disk.key, {"type": "resync", "sid": "s2", "full": True, "blocks": {5: b"old 5"}})
    network.send(node, "bob", disk.key, {"type": "write", "blk": 7, "data": b"new 7"})
    network.receive(node, disk)
    disk.rs_ready.append("s2")
    network.receive(node, disk)
    assert disk.blocks == {5: b"old 5", 7: b"new 7"}
