"""Roles and disk states a command asks the simulated DRBD kernel for: primary,
secondary, outdate, invalidate (and invalidate-remote), new-current-uuid.

Facts (drbd_set_role): -1 for two primaries unless allow-two-primaries, -2 without
access to UpToDate data (a Consistent disk with an unknown peer first runs fence-peer
and is then promoted), -7 when fencing is on and an unreachable peer is not known to be
outdated (fence-peer is run first; with --force a failed fence forces anyway); a
forced promotion starts a new data generation and, when connected, a full sync toward
the peers.
"""

from __future__ import annotations

import os

from xenha_lab.sim.drbd import network, resync
from xenha_lab.sim.drbd.advance import advance
from xenha_lab.sim.drbd.errors import DrbdError
from xenha_lab.sim.drbd.helpers import fence_sync
from xenha_lab.sim.drbd.metadata import MDF_PRIMARY_IND, UUID_JUST_CREATED, new_uuid
from xenha_lab.sim.drbd.network import SessionFile
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.records import DRANK, Decision, Resource


def primary(node: Node, name: str, force: bool) -> None:
    res = node.get(name)
    advance(node, res)
    if res.role == "Primary":
        return
    for conn in res.conns.values():
        if conn.epoch and conn.peer_role == "Primary" and not conn.two_primaries:
            raise DrbdError("state", -1, obj=name)
    forced = with_force = False
    for _try in range(4):
        need = [v for v in res.devices if not res.has_uptodate_access(v)]
        if need and not with_force:
            if force:
                # --force: "Forced to consider local data as UpToDate!"
                if any(not res.devices[v].backing for v in need):
                    raise DrbdError("state", -2, obj=name)
                forced = with_force = True
                continue
            consistent = [v for v in need if res.devices[v].disk == "Consistent"]
            if consistent and len(consistent) == len(need):
                # a Consistent disk may become UpToDate once the unknown peers are fenced
                for pid, conn in list(res.conns.items()):
                    if conn.epoch is None and any(conn.pd[v].pdisk == "DUnknown" for v in consistent):
                        if conn.fencing and fence_sync(node, res, pid):
                            with_force = True
                if with_force:
                    continue
            node.save(res)
            raise DrbdError("state", -2, obj=name)
        nop = [pid for pid, c in res.conns.items()
               if c.fencing and c.epoch is None
               and any(DRANK[pd.pdisk] > DRANK["Outdated"] for pd in c.pd.values())
               and any(d.backing for d in res.devices.values())]
        if nop and not with_force:
            ok = True
            for pid in nop:
                if not fence_sync(node, res, pid):
                    ok = False
            if ok:
                continue
            if not force:
                node.save(res)
                raise DrbdError("state", -7, obj=name)
            with_force = True   # "Forced into split brain situation!"
            continue
        break
    for vnr, dev in res.devices.items():
        if not dev.backing:
            continue
        disk = node.disk(dev.backing)
        if with_force and dev.disk != "UpToDate" and not res.has_uptodate_access(vnr) or \
                forced and dev.disk != "UpToDate":
            if forced:
                # drbd_uuid_new_current: a new data generation starts here
                if disk.cur != UUID_JUST_CREATED:
                    disk.push_history()
                disk.cur = new_uuid()
                for pid, conn in res.conns.items():
                    if conn.epoch is None:
                        disk.oos[pid] = "all"
            dev.disk = "UpToDate"
            disk.set_state_flags("UpToDate")
        disk.flags |= MDF_PRIMARY_IND
        disk.sync_md()
    res.role = "Primary"
    node.save(res)
    network.publish(node, res)
    if forced:
        _reconsider_resync(node, res)


def _reconsider_resync(node: Node, res: Resource) -> None:
    """After a forced promotion while connected, start a full sync toward the peers
    (drbd_set_role sets CONSIDER_RESYNC and sends new UUIDs)."""
    for pid, conn in res.conns.items():
        if conn.epoch is None or not conn.paths:
            continue
        local, peer = conn.paths[0]
        with SessionFile(node.net, local, peer) as sfile:
            sess = sfile.load()
            adv = network.read_advert(node, peer, res.name)
            if not sess or sess.epoch != conn.epoch or adv is None:
                continue
            for vnr, dev in res.devices.items():
                pvol = adv.vols.get(vnr)
                if not dev.backing or not pvol or not pvol.key:
                    continue
                if pvol.disk in ("Inconsistent", "Outdated", "Consistent") and dev.disk == "UpToDate":
                    sess.vols[vnr] = resync.start(network.volume_view(node, res, vnr), pvol.seen_as(pid, adv.token),
                                                  "all", node.rate_kib(res, vnr), node.now)
                    conn.pd[vnr].finished = None
            sfile.save(sess)
    advance(node, res)


def secondary(node: Node, name: str) -> None:
    res = node.get(name)
    advance(node, res)
    if res.role == "Secondary":
        return
    if res.openers:
        raise DrbdError("state", -12, obj=name)
    res.role = "Secondary"
    for dev in res.devices.values():
        if dev.backing:
            disk = node.disk(dev.backing)
            disk.flags &= ~MDF_PRIMARY_IND
            disk.sync_md()
    node.save(res)
    network.publish(node, res)


def outdate(node: Node, minor: int) -> None:
    res, vnr = node.device(minor)
    advance(node, res)
    dev = res.devices[vnr]
    if not dev.backing:
        raise DrbdError("state", -11, obj=str(minor))
    if any(c.epoch for c in res.conns.values()):
        raise DrbdError("state", -6, obj=str(minor))
    if res.role == "Primary":
        raise DrbdError("state", -2, obj=str(minor))
    if DRANK[dev.disk] < DRANK["Outdated"]:
        raise DrbdError("state", -16, obj=str(minor))
    node.set_disk_state(dev, "Outdated")
    node.save(res)
    network.publish(node, res)


def invalidate(node: Node, minor: int, remote_pid: int | None = None) -> None:
    """invalidate (this node's disk is resynced from a peer), or invalidate-remote
    toward peer `remote_pid` (its disk is resynced from ours)."""
    res, vnr = node.device(minor)
    advance(node, res)
    dev = res.devices[vnr]
    if not dev.backing:
        raise DrbdError("state", -4 if remote_pid is None else -11, obj=str(minor))
    conns = [(p, c) for p, c in res.conns.items() if c.epoch]
    if remote_pid is not None:
        conns = [(p, c) for p, c in conns if p == remote_pid]
    if not conns:
        if remote_pid is None and res.role == "Secondary":
            node.set_disk_state(dev, "Inconsistent")
            node.save(res)
            network.publish(node, res)
            return
        raise DrbdError("state", -15, obj=str(minor))
    pid, conn = conns[0]
    if conn.pd[vnr].rs:
        raise DrbdError("state", -8, obj=str(minor))
    local, peer = conn.paths[0]
    with SessionFile(node.net, local, peer) as sfile:
        sess = sfile.load()
        adv = network.read_advert(node, peer, res.name)
        x = network.volume_view(node, res, vnr)
        y = adv.vols[vnr].seen_as(pid, adv.token)
        if remote_pid is None:
            if y.disk != "UpToDate":
                raise DrbdError("state", -5, obj=str(minor))
            sess.vols[vnr] = resync.start(y, x, "all", node.rate_kib(res, vnr), node.now)
        else:
            if x.disk != "UpToDate":
                raise DrbdError("state", -2, obj=str(minor))
            sess.vols[vnr] = resync.start(x, y, "all", node.rate_kib(res, vnr), node.now)
        conn.pd[vnr].finished = None
        sfile.save(sess)
    advance(node, res)


def new_current_uuid(node: Node, minor: int, clear_bitmap: bool, force_resync: bool = False) -> None:
    """drbd_adm_new_c_uuid: a new data generation on this disk. With --clear-bitmap on a
    new resource (current UUID "just created") connected to its peers, "skip initial
    sync": every connected replica takes the new generation and is UpToDate, no data
    moves. With --force-resync (DRBD 9) on such a resource: this disk is UpToDate and a
    full sync toward those peers starts. Otherwise the device must not be connected
    ((151) Need to be StandAlone; DRBD 8.4: not even waiting for its peer).

    The disk state (LINBIT drbd_nl.c, read for facts): DRBD 9 (9.0.0 to 9.2) makes this
    disk UpToDate on every --clear-bitmap, peer skipped or not (a single node's
    bootstrap: a peer away gets a full sync when it connects with just-created
    meta-data); DRBD 8.4 only when it skipped the peer's sync."""
    res, vnr = node.device(minor)
    advance(node, res)
    dev = res.devices[vnr]
    if not dev.backing:
        raise DrbdError("fail", 138, obj=str(minor))
    disk = node.disk(dev.backing)
    skip = []
    for pid, conn in res.conns.items():
        if (clear_bitmap or force_resync) and conn.epoch is not None and conn.pd[vnr].repl == "Established" \
                and disk.cur == UUID_JUST_CREATED:
            skip.append(pid)
        elif conn.epoch is not None or res.v84 and conn.cstate != "StandAlone":
            raise DrbdError("fail", 151, obj=str(minor))
    if disk.cur != UUID_JUST_CREATED:
        disk.push_history()
    disk.cur = new_uuid()
    if clear_bitmap:
        disk.bm.clear()
        disk.oos.clear()
    if force_resync or clear_bitmap and (skip or not res.v84):
        dev.disk = "UpToDate"
        disk.set_state_flags("UpToDate")
    disk.sync_md()
    for pid in skip if clear_bitmap else ():
        conn = res.conns[pid]
        local, peer = conn.paths[0]
        with SessionFile(node.net, local, peer) as sfile:
            sess = sfile.load()
            if sess and sess.epoch == conn.epoch:
                # the peer adopts the generation on its next look (advance._follow)
                sess.vols[vnr] = Decision("skip", src=res.node_id, tgt=pid, sid=os.urandom(6).hex(),
                                          src_cur=disk.cur, done=True, done_at=node.now)
                conn.pd[vnr].finished = sess.vols[vnr].sid
                conn.pd[vnr].pdisk = "UpToDate"
                sfile.save(sess)
    node.save(res)
    network.publish(node, res)
    if force_resync and skip and not clear_bitmap:
        # CONSIDER_RESYNC and the UUIDs sent with UUID_FLAG_RESYNC: the full sync from here
        _reconsider_resync(node, res)
    else:
        advance(node, res)
