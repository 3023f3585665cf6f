"""Resync in the simulated DRBD kernel: what the handshake decides from the generation
identifiers of both ends (`handshake`), how far a resync is (`progress`, `stats`), and
the resync data the source sends (`send_data`).

Simplified: the data moves at once (when the source first looks after the handshake),
the progress is computed from a fixed rate and the resync's start (see `node`).
"""

from __future__ import annotations

import os

from xenha_lab.sim.drbd import network
from xenha_lab.sim.drbd.metadata import BLOCK, UUID_JUST_CREATED
from xenha_lab.sim.drbd.records import Decision, VolumeView

INCONSISTENT_STATES = ("Inconsistent", "Failed", "Attaching")


def relation(x: VolumeView, y: VolumeView) -> str:
    """x's relation to y from generation identifiers: 'same', 'newer', 'older', 'sb'
    (split brain), 'newer-full', 'older-full' (a full sync), 'unrelated'."""
    if x.cur == y.cur:
        return "same"
    xb, yb = x.bm.get(y.nid, 0), y.bm.get(x.nid, 0)
    if xb and yb and xb == yb:
        return "sb"
    if xb and xb == y.cur:
        return "newer"
    if yb and yb == x.cur:
        return "older"
    if y.cur in x.hist or y.cur == UUID_JUST_CREATED:
        return "newer-full"
    if x.cur in y.hist or x.cur == UUID_JUST_CREATED:
        return "older-full"
    return "unrelated"


def union(a, b):
    """Two out-of-sync sets (or "all") together."""
    if a == "all" or b == "all":
        return "all"
    return set(a or ()) | set(b or ())


def handshake(x: VolumeView, y: VolumeView, xdiscard: bool, ydiscard: bool, rate: float, now: float) -> Decision:
    """The per-volume decision both sides agree on (stored in the session record)."""
    if not x.key or not y.key:
        return Decision("nodisk")
    rel = relation(x, y)
    xi, yi = x.disk in INCONSISTENT_STATES, y.disk in INCONSISTENT_STATES
    if rel == "same":
        if xi and yi:
            return Decision("none", both_inconsistent=True)
        if xi or yi:
            src, tgt = (y, x) if xi else (x, y)
            blocks = union(src.oos.get(tgt.nid), tgt.oos.get(src.nid))
            if not blocks:
                blocks = "all"
            return start(src, tgt, blocks, rate, now)
        return Decision("none")
    if rel in ("sb", "unrelated"):
        if xdiscard != ydiscard and rel == "sb":
            src, tgt = (y, x) if xdiscard else (x, y)
            return start(src, tgt, union(x.oos.get(y.nid), y.oos.get(x.nid)), rate, now)
        return Decision("splitbrain" if rel == "sb" else "unrelated")
    if xi and not yi and rel in ("newer", "newer-full"):
        rel = "older-full"
    if yi and not xi and rel in ("older", "older-full"):
        rel = "newer-full"
    if rel.startswith("newer"):
        src, tgt = x, y
    else:
        src, tgt = y, x
    if rel.endswith("full"):
        blocks = "all"
    else:
        blocks = union(src.oos.get(tgt.nid), tgt.oos.get(src.nid))
    return start(src, tgt, blocks, rate, now)


def start(src: VolumeView, tgt: VolumeView, blocks, rate: float, now: float) -> Decision:
    """A resync from `src` to `tgt` of `blocks` (a set, or "all"), starting now."""
    size = min(src.size or 0, tgt.size or 0) or src.size or 0
    total = size if blocks == "all" else len(blocks) * (BLOCK // 1024)
    return Decision("resync", src=src.nid, tgt=tgt.nid, blocks=blocks, total=total, start=now, rate=rate,
                    sent=False, sid=os.urandom(6).hex(), src_cur=src.cur, done=False)


def progress(rs: Decision, now: float) -> float:
    """KiB resynced so far."""
    return min(rs.total, max(0.0, (now - rs.start) * rs.rate))


def send_data(node, disk, dec: Decision, peer_token: str, peer_key: str) -> None:
    """The source queues the resync data for the target's disk."""
    if dec.blocks == "all":
        blocks, full = dict(disk.blocks), True
    else:
        blocks, full = {b: disk.blocks.get(b) for b in dec.blocks}, False
    network.send(node, peer_token, peer_key, {"type": "resync", "sid": dec.sid, "full": full, "blocks": blocks})
    dec.sent = True


class ResyncStats:
    """A resync in progress as status and events2 report it (KiB, KiB/s, seconds)."""

    __slots__ = ("total", "done_kib", "left_kib", "percent", "eta", "rate", "start")

    def __init__(self, rs: Decision, now: float):
        done = progress(rs, now)
        if not rs.sent:
            done = min(done, rs.total * 0.99)
        self.total, self.done_kib = rs.total, done
        self.left_kib = max(0.0, rs.total - done)
        self.percent = 100.0 * done / max(rs.total, 1)
        self.eta = self.left_kib / rs.rate if rs.rate else 0
        self.rate, self.start = rs.rate, rs.start


def stats(pd, now: float) -> ResyncStats | None:
    """The resync of a peer device, or None when there is none."""
    return ResyncStats(pd.rs, now) if pd.rs else None


def out_of_sync_kib(node, res, pid: int, vnr: int) -> int:
    pd = res.conns[pid].pd[vnr]
    dev = res.devices[vnr]
    rs = stats(pd, node.now)
    if rs:
        return int(rs.left_kib)
    if not dev.backing:
        return 0
    disk = node.disk(dev.backing)
    if not disk.exists():
        return 0
    oos = disk.oos.get(pid)
    if oos == "all":
        return dev.size_kib
    return len(oos or ()) * (BLOCK // 1024)
