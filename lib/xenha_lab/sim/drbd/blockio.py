"""Users of /dev/drbdN on a simulated node: writes and reads of 4 KiB blocks through the
DRBD device, as a guest's disk I/O would go.

A write is acknowledged protocol-C style: once it is on the local disk and queued for
every connected peer's disk (`network.send`; the peer applies its queue before
anything else it does with that disk) and, where a kernel process runs, once the
peer's kernel answered over the TCP link after that (the write blocks meanwhile, up to
DRBD's `timeout`). Writes while a peer is away set its bits in the bitmap, and the
first of them starts a new data generation.
"""

from __future__ import annotations

from xenha_lab.sim.drbd import link, network
from xenha_lab.sim.drbd.advance import advance
from xenha_lab.sim.drbd.metadata import BLOCK, Disk, new_uuid
from xenha_lab.sim.drbd.network import SessionFile
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.records import Resource


class BlockIOError(Exception):
    """A write or read a device user could not do (errno-like text)."""


def write_block(node: Node, name: str, vnr: int, blk: int, data: bytes) -> str:
    """A write by a user of /dev/drbdN on this node (the caller holds the node lock).
    Returns 'ack' once it is durable where protocol C requires (local disk + every
    connected peer's disk), 'frozen' when I/O is suspended (nothing acknowledged: retry
    later), raises BlockIOError otherwise.

    With a kernel process (`link`), a peer counts only once it answered over the TCP
    link after the data was queued for it: the node lock is released meanwhile (the
    write waits as long as DRBD would, up to the link's `timeout`); a peer that does not
    answer gets the block in its bitmap, as after a lost connection."""
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
    kernel = network.kernel_running(node)
    sent_to, waits = set(), {}
    for pid, conn in sorted(res.conns.items()):
        if conn.epoch is None or not conn.paths:
            continue
        outcome = _replicate(node, res, pid, conn, vnr, blk, data, kernel)
        if outcome == "frozen":
            return "frozen"
        if outcome in ("sent", "wait"):
            if kernel and conn.nopts.get("protocol", "C") != "A":
                waits[tuple(conn.paths[0])] = pid
            if outcome == "sent":
                sent_to.add(pid)
    lost = False
    if waits:
        # protocol C: the peer's answer over the link, without holding the node lock
        wait = max(_timeout_s(res.conns[pid]) for pid in waits.values()) + 2.0
        with node.unlocked():
            acked = link.round_trip(node.state, list(waits), wait)
        lost = any(path not in acked for path in waits)
        sent_to -= {pid for path, pid in waits.items() if path not in acked}
        res = node.get(name)
        advance(node, res)          # a link that died meanwhile: the connection is lost now
        dev = res.devices[vnr]
        if dev.backing:
            local = node.disk(dev.backing)
    if local is not None:
        _local_write(res, vnr, local, blk, data, sent_to)
    dev.written += len(data) // 1024
    node.save(res)
    network.publish(node, res)
    if lost and res.suspended:
        return "frozen"             # on disk, but held until the fence-peer handler returns
    return "ack"


def _replicate(node: Node, res: Resource, pid: int, conn, vnr: int, blk: int, data: bytes, kernel: bool) -> str:
    """Queue a write for one connected peer (under the session lock, so that a
    concurrent disconnect either sees this write queued or we see the session closed).
    'sent', 'skip' (the peer is not there, or has no disk), 'frozen' (the peer's resync
    data has not arrived yet: wait for it), or 'wait' (the peer's adverts are gone but
    its TCP link lives: nothing queued, yet the write waits for its answer)."""
    pd = conn.pd[vnr]
    local_addr, peer_addr = conn.paths[0]
    with SessionFile(node.net, local_addr, peer_addr) as sfile:
        sess = sfile.load()
        adv = network.read_advert(node, peer_addr, res.name)
        if not (sess and sess.is_open(conn.epoch) and not network.link_cut(node, local_addr, peer_addr)):
            return "skip"
        if adv is None:
            return "wait" if kernel else "skip"
        pvol = adv.vols.get(vnr)
        if pd.pdisk in ("Diskless", "DUnknown") or pvol is None or not pvol.key:
            return "skip"
        dec = sess.vols.get(vnr)
        if dec is not None and dec.resyncing and dec.tgt == res.node_id and not dec.sent:
            return "frozen"
        network.send(node, adv.token, pvol.key, {"type": "write", "blk": blk, "data": data})
        return "sent"


def _timeout_s(conn) -> float:
    """DRBD's `timeout` net option in seconds (tenths of a second; default 6 s)."""
    try:
        return int(conn.nopts.get("timeout", 60)) / 10.0
    except ValueError:
        return 6.0


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
