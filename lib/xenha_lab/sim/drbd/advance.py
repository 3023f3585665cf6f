"""The simulated DRBD kernel's clock step: `advance(node, res)` brings one resource of
one node up to date with the time and with what its peers did — it applies what
arrived on the wire, and for each connection: notices a lost peer or a cut link
(`network.link_cut`), makes the handshake when both ends see each other (a
`records.Session` both read), follows the peer's role and disk while connected, moves
a resync on and ends it, and runs the helpers the kernel runs at those moments
(fence-peer on loss of a connection to a good peer, before- and after-resync-target,
unfence-peer).

Every drbdsetup command (and the test API) calls it under the node lock for the
resources it looks at; the node's kernel process (`kernel`), where one runs, calls it
for every resource several times a second, so that time passes on its own. With a
kernel process, a connection ends when its TCP link does: a peer whose adverts
vanished (power cut) stays connected, with no news, until DRBD's timers end the link.
"""

from __future__ import annotations

import os

from xenha_lab.sim.drbd import network, resync
from xenha_lab.sim.drbd.helpers import resync_target_helper, spawn_helper
from xenha_lab.sim.drbd.metadata import BLOCK, UUID_JUST_CREATED
from xenha_lab.sim.drbd.network import SessionBusy, SessionFile
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.records import Advert, Connection, Decision, Resource, Session

ABORTS = ("splitbrain", "unrelated", "two-primaries")
GOOD_DISKS = ("UpToDate", "Consistent", "Outdated")


def advance(node: Node, res: Resource) -> None:
    """Bring a resource up to date with time and with what the peers did (caller holds
    the node lock); saves and re-advertises it."""
    for dev in res.devices.values():
        if dev.backing:
            network.receive(node, node.disk(dev.backing))
    for pid in sorted(res.conns):
        _step(node, res, pid, res.conns[pid])
    node.save(res)
    network.publish(node, res)


def advance_all(node: Node, names: list[str] | None = None) -> list[Resource]:
    """Advance these resources (all by default) one after the other, each loaded just
    before its turn (caller holds the node lock): advancing one may release the lock
    for a helper (before-resync-target), and a record loaded before that, saved after,
    would undo what another command did to it meanwhile (a `primary --force` lost
    that way left an Inconsistent source with a finished resync: provisioning waited
    forever). The records returned are for reading only."""
    done = []
    for name in node.names() if names is None else names:
        res = node.load(name)
        if res is not None:
            advance(node, res)
            done.append(res)
    return done


# How long a step waits for a connection's session before leaving it for the next look.
SESSION_WAIT = 0.5


def _step(node: Node, res: Resource, pid: int, conn: Connection) -> None:
    """One connection: lost, kept, or (re)made; left as it is when its session stays
    busy (the peer runs a helper with it held: see SessionFile)."""
    if conn.cstate == "StandAlone" or not conn.paths:
        return
    local, peer = conn.paths[0]
    try:
        _step_in_session(node, res, pid, conn, SessionFile(node.net, local, peer, wait=SESSION_WAIT))
    except SessionBusy:
        return


def _step_in_session(node: Node, res: Resource, pid: int, conn: Connection, session: SessionFile) -> None:
    local, peer = conn.paths[0]
    with session as sfile:
        sess = sfile.load()
        adv = network.read_advert(node, peer, res.name)
        link_ok = not network.link_cut(node, local, peer)
        mine = adv.conns.get(res.node_id) if adv else None
        peer_ok = bool(adv and adv.node_id == pid and mine and mine.want and mine.peer_addr == local)
        incs_ok = bool(sess and adv and sess.incs.get(res.node_id) == res.inc and sess.incs.get(pid) == adv.inc)
        if conn.epoch is not None:
            ours = sess if sess and sess.epoch == conn.epoch else None
            if adv is None and link_ok and ours and not ours.closed and network.kernel_running(node):
                # the peer's adverts are gone (its power was cut) but our TCP link to
                # it lives on: no news from the peer until DRBD's timers end the link
                return
            if not (link_ok and peer_ok and ours and not ours.closed and incs_ok):
                if ours and not ours.closed:
                    ours.closed = "network" if not link_ok else "peer"
                    sfile.save(ours)
                graceful = bool(ours and ours.closed == "disconnect" and link_ok)
                lose_connection(node, res, pid, conn, ours,
                                "NetworkFailure" if not link_ok or not graceful else "Unconnected")
            else:
                _follow(node, res, pid, conn, sess, adv)
                sfile.save(sess)
                return
        aborted = sess and sess.closed in ABORTS and sess.epoch != conn.sb_seen and adv is not None and \
            sess.incs.get(res.node_id) == res.inc and sess.incs.get(pid) == adv.inc
        if aborted:
            _standalone_after(conn, sess)
            return
        if link_ok and peer_ok:
            if not (sess and not sess.closed and incs_ok):
                sess = _new_session(node, res, pid, conn, adv)
                sfile.save(sess)
            if sess.closed in ABORTS:
                _standalone_after(conn, sess)
                return
            conn.epoch = sess.epoch
            conn.lost = None
            conn.discard = False
            if not _joined(node, res, pid, conn, sess, adv):
                sfile.save(sess)       # the target refused the resync: connection dropped
                return
            _follow(node, res, pid, conn, sess, adv)
            sfile.save(sess)
        else:
            conn.cstate = "Connecting"


def _standalone_after(conn: Connection, sess: Session) -> None:
    """Split brain (or unrelated data) found in the handshake: after-sb policy
    `disconnect` drops the connection; both sides end StandAlone."""
    conn.drop()
    conn.sb_seen = sess.epoch
    conn.sb = sess.closed


def _new_session(node: Node, res: Resource, pid: int, conn: Connection, adv: Advert) -> Session:
    """The handshake: both ends see each other and decide, per volume, what follows."""
    sess = Session(epoch=os.urandom(6).hex(), incs={res.node_id: res.inc, pid: adv.inc}, created=node.now)
    both_primary = res.role == "Primary" and adv.role == "Primary"
    two_pri = conn.two_primaries and adv.conns[res.node_id].two_pri
    for vnr in res.devices:
        if vnr in adv.vols:
            _decide(node, res, pid, conn, adv, sess, vnr)
    if both_primary and not two_pri and sess.abort is None:
        sess.abort = "two-primaries"
    if sess.abort is not None:
        sess.closed = sess.abort
    return sess


def _decide(node: Node, res: Resource, pid: int, conn: Connection, adv: Advert, sess: Session, vnr: int) -> None:
    """The handshake's decision for one volume, from both ends' views as they are now
    (ours, and the peer's advert), noted with the fingerprints of those views."""
    mine, theirs = network.volume_view(node, res, vnr), adv.vols[vnr]
    decision = resync.handshake(mine, theirs.seen_as(pid, adv.token), conn.discard, adv.conns[res.node_id].discard,
                                node.rate_kib(res, vnr), node.now)
    if decision.kind in ("splitbrain", "unrelated"):
        sess.abort = decision.kind
    sess.vols[vnr] = decision
    sess.basis.setdefault(res.node_id, {})[vnr] = mine.fingerprint(pid)
    sess.basis.setdefault(pid, {})[vnr] = theirs.fingerprint(res.node_id)


def _decided_on_stale_view(node: Node, res: Resource, pid: int, conn: Connection, sess: Session,
                           adv: Advert) -> bool:
    """The peer made the handshake from our advert; if we changed since (a write after
    the connection was lost, not yet advertised), decide again from what we are now
    (the peer follows the new decision). True when that ends in split brain."""
    basis = sess.basis.get(res.node_id, {})
    for vnr in list(sess.vols):
        if vnr not in res.devices or vnr not in adv.vols or vnr not in basis:
            continue
        if network.volume_view(node, res, vnr).fingerprint(pid) != basis[vnr]:
            _decide(node, res, pid, conn, adv, sess, vnr)
    if sess.abort is not None:
        sess.closed = sess.abort
        _standalone_after(conn, sess)
        return True
    return False


def _joined(node: Node, res: Resource, pid: int, conn: Connection, sess: Session, adv: Advert) -> bool:
    """Just connected: adopt the handshake's outcome for our side. False when this node,
    to become SyncTarget, refused the resync (the connection is dropped), or when the
    handshake, made again from our current view, found split brain."""
    if _decided_on_stale_view(node, res, pid, conn, sess, adv):
        return False
    conn.cstate = "Connected"
    unfence = False
    for vnr, pd in conn.pd.items():
        dec = sess.vols.get(vnr)
        dev = res.devices[vnr]
        if dec is None:
            pd.off()
            continue
        pd.rs = None
        if dec.kind == "none" and dev.backing:
            disk = node.disk(dev.backing)
            peer_disk = adv.vols[vnr].disk
            if not dec.both_inconsistent:
                if dev.disk in GOOD_DISKS and peer_disk in GOOD_DISKS and (
                        "UpToDate" in (dev.disk, peer_disk) or "Consistent" in (dev.disk, peer_disk)):
                    dev.disk = "UpToDate"
                    disk.set_state_flags("UpToDate")
                disk.bm.pop(pid, None)
                disk.oos.pop(pid, None)
                if disk.peer_outdated.pop(pid, None) and res.role == "Primary":
                    unfence = True
                disk.sync_md()
        if dec.kind == "resync":
            if dec.src != res.node_id and dev.backing:
                if not _target_ready(node, res, pid, conn, sess, vnr, dec):
                    return False
                node.set_disk_state(dev, "Inconsistent")
            elif dec.src != res.node_id:
                dec.tgt_ready = True
    if res.susp_fen and all(c.cstate == "Connected" for c in res.conns.values()):
        # after_state_ch, "case2: the connection was established again": I/O frozen for
        # fencing resumes (a fence-peer that failed or is still running no longer matters)
        res.susp_fen = False
    if unfence and conn.fencing:
        spawn_helper(node, res, pid, "unfence-peer")
    return True


def _target_ready(node: Node, res: Resource, pid: int, conn: Connection, sess: Session, vnr: int,
                  dec: Decision) -> bool:
    """Before this node becomes SyncTarget for a volume: run before-resync-target once per
    resync (resync data queued by the source is not applied to our disk before that:
    `network.receive`). A handler that fails makes DRBD drop the connection
    (drbd_start_resync: "before-resync-target handler returned %d, dropping
    connection."): our side goes StandAlone, the peer sees us gone. False in that case."""
    if dec.tgt_ready:
        return True
    rc = resync_target_helper(node, res, pid, vnr, "before-resync-target")
    if rc > 0:
        node.note_helper(f"# before-resync-target returned {rc}, dropping connection")
        sess.closed = "peer"
        conn.drop()
        return False
    dec.tgt_ready = True
    backing = res.devices[vnr].backing
    if backing:
        disk = node.disk(backing)
        disk.rs_ready.append(dec.sid)
        del disk.rs_ready[:-16]
        disk.save()
    return True


def _follow(node: Node, res: Resource, pid: int, conn: Connection, sess: Session, adv: Advert) -> None:
    """While connected: peer role and disk from its advertisement, resync from the session."""
    conn.cstate = "Connected"
    conn.peer_role = adv.role
    resync_finished_as_source = False
    resync_finished_as_target = []
    for vnr, pd in conn.pd.items():
        dec = sess.vols.get(vnr)
        dev = res.devices[vnr]
        pvol = adv.vols.get(vnr)
        if dec is None or pvol is None:
            pd.off()
            continue
        if dec.kind == "nodisk":
            pd.repl, pd.pdisk, pd.rs = "Established", pvol.disk if pvol.disk != "Diskless" else "Diskless", None
            continue
        if dec.kind == "skip" and dec.src != res.node_id and pd.finished != dec.sid and dev.backing:
            # the peer ran new-current-uuid --clear-bitmap on the new resource: take its
            # data generation, UpToDate without a resync (a disk with data of its own keeps it)
            disk = node.disk(dev.backing)
            if disk.cur == UUID_JUST_CREATED:
                disk.cur = dec.src_cur
                disk.bm.pop(pid, None)
                disk.oos.pop(pid, None)
                dev.disk = "UpToDate"
                disk.set_state_flags("UpToDate")
                disk.sync_md()
            pd.finished = dec.sid
        if dec.kind == "resync":
            me_src = dec.src == res.node_id
            disk = node.disk(dev.backing) if dev.backing else None
            if not me_src and disk is not None and pd.finished != dec.sid:
                # the target: before-resync-target first, then the data (also when the
                # source already counts the resync done: it may have been quicker)
                if not _target_ready(node, res, pid, conn, sess, vnr, dec):
                    return
                disk = node.disk(dev.backing)    # _target_ready saved rs_ready through a copy of its own
                if dec.sent and dec.sid not in disk.received:
                    network.receive(node, disk)      # the data is queued (we hold the session lock): take it now
                    disk = node.disk(dev.backing)
            arrived = me_src or disk is None or pd.finished == dec.sid or dec.sid in disk.received
            if not dec.done:
                if me_src and not dec.sent and disk is not None:
                    resync.send_data(node, disk, dec, adv.token, pvol.key)
                # as in DRBD, a resync ends once the target took every block (it starts
                # only after the target's before-resync-target handler)
                if resync.progress(dec, node.now) >= dec.total and dec.sent and dec.tgt_ready and arrived:
                    dec.done = True
                    dec.done_at = node.now
            if not dec.done or not arrived:
                pd.repl = "SyncSource" if me_src else "SyncTarget"
                pd.pdisk = "Inconsistent" if me_src else "UpToDate"
                pd.rs = dec
                if not me_src:
                    dev.disk = "Inconsistent"
                continue
            if disk is not None and pd.finished != dec.sid:
                _resync_ended(pid, dev, disk, pd, dec, me_src)
                if me_src:
                    resync_finished_as_source = True
                else:
                    resync_finished_as_target.append(vnr)
        pd.rs = None
        peer_disk = pvol.disk
        if (dec.kind == "resync" and dec.done or dec.kind == "skip") and \
                peer_disk in ("Inconsistent", "Outdated", "Consistent"):
            # the peer has not looked yet (its advertisement may even predate its turn to
            # SyncTarget: a short resync ends first); the resync is over for both, and the
            # real source sets its peer's disk UpToDate itself (drbd_resync_finished)
            peer_disk = "UpToDate"
        pd.repl, pd.pdisk = "Established", peer_disk
        if dev.backing and dev.disk in ("Consistent", "Outdated") and peer_disk == "UpToDate":
            disk = node.disk(dev.backing)
            if disk.cur == pvol.cur:
                dev.disk = "UpToDate"
                disk.set_state_flags("UpToDate")
                disk.sync_md()
    for vnr in resync_finished_as_target:
        # drbd_resync_finished: after-resync-target on the node that was SyncTarget
        spawn_helper(node, res, pid, "after-resync-target", arg=res.helper_arg(vnr))
    if resync_finished_as_source and conn.fencing:
        if all(d.disk == "UpToDate" for d in res.devices.values() if d.backing) and \
                all(p.pdisk == "UpToDate" for p in conn.pd.values()):
            spawn_helper(node, res, pid, "unfence-peer")


def _resync_ended(pid: int, dev, disk, pd, dec: Decision, me_src: bool) -> None:
    """drbd_resync_finished for one volume: the source forgets what was out of sync for
    the peer; the target takes the source's data generation and is UpToDate."""
    if not me_src:
        if dec.src_cur != disk.cur and disk.cur != UUID_JUST_CREATED:
            disk.push_history()
        disk.cur = dec.src_cur
        dev.disk = "UpToDate"
        disk.set_state_flags("UpToDate")
    else:
        disk.peer_outdated.pop(pid, None)
    disk.oos.pop(pid, None)
    disk.bm.pop(pid, None)
    disk.sync_md()
    pd.finished = dec.sid


def _ended_unseen(node: Node, res: Resource, pid: int, vnr: int, dec: Decision | None) -> bool:
    """A resync that was over (all data sent, its time up) when the connection went,
    which this node had not yet seen end: a real target has all the data by the time
    its source sees the end, so it finishes it now. Applies it; True when this node was
    its target (after-resync-target is due)."""
    pd, dev = res.conns[pid].pd[vnr], res.devices[vnr]
    if not (dec and dec.kind == "resync" and dev.backing and pd.finished != dec.sid and dec.sent):
        return False
    if not (dec.done or (resync.progress(dec, node.now) >= dec.total and dec.tgt_ready)):
        return False                 # (a target that never took the data has it still out of sync)
    disk = node.disk(dev.backing)
    me_src = dec.src == res.node_id
    if not me_src:
        network.receive(node, disk)
        disk = node.disk(dev.backing)
        if dec.sid not in disk.received:
            return False             # the data never came: nothing to finish
    _resync_ended(pid, dev, disk, pd, dec, me_src)
    return not me_src


def lose_connection(node: Node, res: Resource, pid: int, conn: Connection, sess: Session | None, how: str) -> None:
    """The connection is gone (network failure, peer down, peer disconnect); `sess` is
    its session when known. A resync that was over is finished first; one in progress
    leaves its remaining blocks out of sync. A Primary that loses a good peer runs
    fence-peer."""
    was_primary = res.role == "Primary"
    had_good_peer = False
    for vnr, pd in conn.pd.items():
        dev = res.devices[vnr]
        if pd.pdisk in ("UpToDate", "Consistent"):
            had_good_peer = True
        dec = sess.vols.get(vnr) if sess else pd.rs
        if _ended_unseen(node, res, pid, vnr, dec):
            spawn_helper(node, res, pid, "after-resync-target", arg=res.helper_arg(vnr))
        elif dec and dec.resyncing and dev.backing:
            disk = node.disk(dev.backing)
            done = resync.progress(dec, node.now) if dec.sent else 0.0
            if dec.blocks != "all":
                disk.oos[pid] = set(sorted(dec.blocks)[int(done // (BLOCK // 1024)):])
                if dec.src != res.node_id:
                    dev.disk = "Inconsistent"
            else:
                disk.oos[pid] = "all"
                if dec.tgt == res.node_id:
                    dev.disk = "Inconsistent"
            disk.sync_md()
        disconnected = sess is not None and sess.closed == "disconnect"
        peer_outdated = disconnected and sess.outdated == pid
        if disconnected and sess.outdated == res.node_id and dev.backing and dev.disk in ("UpToDate", "Consistent"):
            # the peer (a Primary) left gracefully and outdated us on the way out
            node.set_disk_state(dev, "Outdated")
        pd.off("Outdated" if peer_outdated else "DUnknown")
        if peer_outdated and dev.backing:
            disk = node.disk(dev.backing)
            disk.peer_outdated[pid] = True
            disk.sync_md()
    conn.epoch = None
    conn.peer_role = "Unknown"
    conn.cstate = "Connecting"
    conn.lost = (how, node.now)
    if was_primary and had_good_peer and conn.fencing and not all(p.pdisk == "Outdated" for p in conn.pd.values()):
        if conn.fencing == 2:
            res.susp_fen = True
        conn.fence_id = os.urandom(4).hex()
        spawn_helper(node, res, pid, "fence-peer", fence_id=conn.fence_id)
