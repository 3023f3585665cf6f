"""Users of /dev/drbdN on a simulated node: writes and reads of 4 KiB blocks through the
DRBD device, as a guest's disk I/O would go.

A write is acknowledged protocol-C style: once it is on the local disk and queued for
every connected peer's disk (`network.send`; the peer applies its queue before
anything else it does with that disk). Writes while a peer is away set its bits in
the bitmap, and the first of them starts a new data generation.
"""

from __future__ import annotations

from xenha_lab.sim.drbd import network
from xenha_lab.sim.drbd.advance import advance
from xenha_lab.sim.drbd.metadata import BLOCK, Disk, new_uuid
from xenha_lab.sim.drbd.network import SessionFile
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.records import Resource


class BlockIOError(Exception):
    """A write or read a device user could not do (errno-like text)."""


def write_block(node: Node, name: str, vnr: int, blk: int, data: bytes) -> str:
    """A write by a user of /dev/drbdN on this node. Returns 'ack' once it is durable
    where protocol C requires (local disk + every connected peer's disk), 'frozen' when
    I/O is suspended (nothing was written; retry later), raises BlockIOError otherwise."""
    res = node.get(name)
    advance(node, res)
    if res.role != "Primary":
        raise BlockIOError("EROFS: not Primary (auto-promote is not simulated)")
    if res.suspended:
        return "frozen"
    dev = res.devices[vnr]
    local = node.disk(dev.backing) if dev.backing else None
    if local is not None and dev.disk not in ("UpToDate", "Inconsistent", "Consistent"):
        local = None
    if local is None and not any(c.epoch and c.pd[vnr].pdisk == "UpToDate" for c in res.conns.values()):
        raise BlockIOError("EIO: no access to UpToDate data")
    if dev.size_kib and blk * (BLOCK // 1024) >= dev.size_kib:
        raise BlockIOError("ENOSPC: beyond the end of the device")
    # replicate to connected peers first (under the session lock, so that a concurrent
    # disconnect either sees this write queued or we see the session closed)
    sent_to = set()
    for pid, conn in sorted(res.conns.items()):
        if conn.epoch is None or not conn.paths:
            continue
        pd = conn.pd[vnr]
        local_addr, peer_addr = conn.paths[0]
        with SessionFile(node.net, local_addr, peer_addr) as sfile:
            sess = sfile.load()
            adv = network.read_advert(node, peer_addr, name)
            alive = (sess and sess.is_open(conn.epoch) and not network.link_cut(node.net, local_addr, peer_addr)
                     and adv is not None)
            if not alive:
                continue
            pvol = adv.vols.get(vnr)
            if pd.pdisk in ("Diskless", "DUnknown") or pvol is None or not pvol.key:
                continue
            dec = sess.vols.get(vnr)
            if dec is not None and dec.resyncing and dec.tgt == res.node_id and not dec.sent:
                return "frozen"   # the resync data has not arrived yet: wait for it
            network.send(node, adv.token, pvol.key, {"type": "write", "blk": blk, "data": data})
            sent_to.add(pid)
    if local is not None:
        _local_write(res, vnr, local, blk, data, sent_to)
    dev.written += len(data) // 1024
    node.save(res)
    network.publish(node, res)
    return "ack"


def _local_write(res: Resource, vnr: int, disk: Disk, blk: int, data: bytes, sent_to: set) -> None:
    missing = [pid for pid in res.conns if pid not in sent_to]
    if missing:
        # writes without a peer: the peer gets a bitmap bit, and the first such write
        # after losing the peer starts a new data generation (new current UUID)
        rotate = False
        for pid in missing:
            if not disk.bm.get(pid):
                disk.bm[pid] = disk.cur
                rotate = True
            disk.oos_add(pid, blk)
        if rotate and res.devices[vnr].disk == "UpToDate":
            disk.push_history()
            disk.cur = new_uuid()
    disk.store(blk, data)
    disk.written_kib += len(data) // 1024
    disk.sync_md()


def read_block(node: Node, name: str, vnr: int, blk: int):
    res = node.get(name)
    advance(node, res)
    dev = res.devices[vnr]
    if dev.backing and dev.disk == "UpToDate":
        return node.disk(dev.backing).blocks.get(blk)
    raise BlockIOError("EIO: local disk not UpToDate")


def disk_blocks(node: Node, backing: str) -> dict:
    """What a backing disk of this node holds (block -> bytes), whatever the DRBD state."""
    disk = node.disk(backing)
    if not disk.exists():
        return {}
    network.receive(node, disk)
    return dict(disk.blocks)
