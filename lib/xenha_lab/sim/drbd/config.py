"""Configuration changes of the simulated DRBD kernel, as drbdsetup asks for them:
resources, minors, peers and paths; options; attaching and detaching a backing disk;
connecting, disconnecting, and taking a resource down.

Facts: the initial disk state after attach is the kernel's disk_state_from_md:
Inconsistent without the consistent flag, Outdated without was-up-to-date, else
UpToDate without fencing or when all peers are known outdated, Consistent otherwise.
Attaching opens the backing device exclusively: the disk is registered as held by
drbdN in the block-device holders registry shared with the simulated LVM
(`xenha_lab.sim.holders`), so that an LV under DRBD shows `o` (open) and refuses
deactivation, as with a real kernel.
"""

from __future__ import annotations

import os

from xenha_lab.sim import holders
from xenha_lab.sim.drbd import network
from xenha_lab.sim.drbd.advance import advance, lose_connection
from xenha_lab.sim.drbd.errors import DrbdError
from xenha_lab.sim.drbd.metadata import (MD_MAGIC_08, MD_MAGIC_09, MDF_AL_CLEAN, MDF_PRIMARY_IND, UUID_JUST_CREATED,
                                         Disk, device_size, md_superblock, usable_kib)
from xenha_lab.sim.drbd.network import SessionFile
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.drbd.records import Connection, Device, PeerDevice, Resource

# --- objects -----------------------------------------------------------------------
def new_resource(node: Node, name: str, node_id: int, opts: dict) -> None:
    if node.load(name) is not None:
        return  # the kernel answers NO_ERROR for an existing resource without NLM_F_EXCL
    node.save(Resource(name=name, node_id=node_id, inc=os.urandom(8).hex(), opts=dict(opts), created=node.now))


def new_minor(node: Node, name: str, minor: int, vnr: int) -> None:
    res = node.get(name)
    other, _ = node.by_minor(minor)
    if other is not None or vnr in res.devices:
        raise DrbdError("fail", 161, obj=name)
    res.devices[vnr] = Device(minor=minor)
    for conn in res.conns.values():
        conn.pd[vnr] = PeerDevice()
    node.save(res)


def new_peer(node: Node, name: str, pid: int, opts: dict) -> None:
    res = node.get(name)
    if pid == res.node_id or pid < 0 or pid > 31:
        raise DrbdError("fail", 162, text="Invalid peer-node-id\n", obj=name)
    if pid in res.conns:
        raise DrbdError("fail", 161, text="Already exists", obj=name)
    if opts.get("fencing") == "resource-and-stonith" and opts.get("protocol", "C") == "A":
        raise DrbdError("fail", 154, obj=name)
    cname = opts.pop("_name", "")
    res.conns[pid] = Connection(name=cname, nopts=opts, pd={v: PeerDevice() for v in res.devices})
    node.save(res)


def connection_of(node: Node, name: str, pid: int):
    """The resource and its connection to peer node-id pid (drbdsetup's error when none)."""
    res = node.get(name)
    conn = res.conns.get(pid)
    if conn is None:
        raise DrbdError("plain", 10, f"{name}: No such connection\n")
    return res, conn


def net_options(node: Node, name: str, pid: int, opts: dict, set_defaults: bool) -> None:
    res, conn = connection_of(node, name, pid)
    opts.pop("_name", None)
    if opts.get("allow-two-primaries") == "no" and res.role == "Primary" and conn.peer_role == "Primary":
        raise DrbdError("fail", 164, obj=name)
    if set_defaults:
        conn.nopts = {}
    conn.nopts.update(opts)
    node.save(res)


def disk_options(node: Node, minor: int, opts: dict, set_defaults: bool) -> None:
    res, vnr = node.by_minor(minor)
    if res is None:
        raise DrbdError("fail", 127)
    dev = res.devices[vnr]
    if not dev.backing:
        raise DrbdError("fail", 138)
    if set_defaults:
        dev.dopts = {}
    dev.dopts.update(opts)
    node.save(res)


def resource_options(node: Node, name: str, opts: dict, set_defaults: bool) -> None:
    res = node.get(name)
    if set_defaults:
        res.opts = {}
    res.opts.update(opts)
    node.save(res)


def new_path(node: Node, name: str, pid: int, local: str, peer: str) -> None:
    res, conn = connection_of(node, name, pid)
    local, peer = network.norm_addr(local), network.norm_addr(peer)
    if [local, peer] in conn.paths:
        raise DrbdError("fail", 102, text="Local address(port) already in use.", obj=name)
    conn.paths.append([local, peer])
    node.save(res)


def del_path(node: Node, name: str, pid: int, local: str, peer: str) -> None:
    res, conn = connection_of(node, name, pid)
    pair = [network.norm_addr(local), network.norm_addr(peer)]
    if pair in conn.paths:
        if conn.cstate != "StandAlone" and len(conn.paths) == 1:
            raise DrbdError("fail", 151, obj=name)
        network.withdraw(node, res, {pair[0]})
        conn.paths.remove(pair)
        node.save(res)


def del_minor(node: Node, minor: int) -> None:
    res, vnr = node.device(minor)
    if res.devices[vnr].backing:
        raise DrbdError("fail", 160, obj=str(minor))
    del res.devices[vnr]
    for conn in res.conns.values():
        conn.pd.pop(vnr, None)
    node.save(res)


def del_resource(node: Node, name: str) -> None:
    res = node.get(name)
    if res.devices or res.conns:
        raise DrbdError("fail", 159, obj=name)
    node.forget(name)


def suspend_io(node: Node, minor: int, resume: bool) -> None:
    res, _vnr = node.device(minor)
    if resume:
        res.susp_user = False
        res.susp_fen = False
        for conn in res.conns.values():
            conn.fence_id = None
    else:
        res.susp_user = True
    node.save(res)
    network.publish(node, res)


# --- attach / detach -----------------------------------------------------------------
def attach(node: Node, minor: int, backing: str, meta: str, idx: str, opts: dict, md_format: str = "v09") -> None:
    res, vnr = node.device(minor)
    dev = res.devices[vnr]
    if dev.disk != "Diskless":
        raise DrbdError("fail", 124, obj=str(minor))
    try:
        st = os.stat(backing)
    except OSError:
        raise DrbdError("fail", 104, obj=str(minor)) from None
    if (st.st_mode & 0o170000) != 0o060000:
        raise DrbdError("fail", 104, obj=str(minor))
    for other in node.all():
        for d in other.devices.values():
            if d.backing == backing:
                raise DrbdError("fail", 114, obj=str(minor))
    sb = md_superblock(meta)
    if sb is None or (sb[3] != MD_MAGIC_09 if md_format == "v09" else sb[3] not in MD_MAGIC_08):
        raise DrbdError("fail", 119, obj=str(minor))
    disk = node.disk(backing)
    if not disk.exists() or disk.md_uuid != sb[1]:
        # meta-data (re)created by drbdmeta: whatever the record knew is gone
        disk.fresh(sb[1])
        if sb[1] != UUID_JUST_CREATED:
            disk.cur = sb[1]
            disk.flags = sb[2] & ~MDF_AL_CLEAN
        disk.save()
    network.receive(node, disk)
    dev.backing, dev.meta, dev.idx, dev.dopts = backing, meta, idx, dict(opts)
    dev.size_kib = usable_kib(device_size(backing))
    holders.hold(holders.registry_dir(node.environ), backing, f"drbd{dev.minor}",
                 opens=2 if idx == "internal" else 1)   # data and internal meta-data: two opens
    dev.disk = initial_disk_state(res, disk)
    if dev.disk == "UpToDate":
        disk.set_state_flags("UpToDate")
    disk.sync_md()
    node.save(res)


def initial_disk_state(res: Resource, disk: Disk) -> str:
    state = disk.consistent_state()
    if state != "UpToDate":
        return state
    fencing = [pid for pid, c in res.conns.items() if c.fencing]
    if not fencing or all(disk.peer_outdated.get(pid) for pid in fencing):
        return "UpToDate"
    return "Consistent"


def detach(node: Node, minor: int, force: bool = False) -> None:
    res, vnr = node.device(minor)
    advance(node, res)
    dev = res.devices[vnr]
    if dev.disk == "Diskless":
        return
    if res.role == "Primary" and not force:
        peers_ok = any(c.epoch and c.pd[vnr].pdisk == "UpToDate" for c in res.conns.values())
        if not peers_ok:
            raise DrbdError("state", -2, obj=str(minor))
    _release_disk(node, res, vnr)
    node.save(res)
    network.publish(node, res)


def _release_disk(node: Node, res: Resource, vnr: int) -> None:
    dev = res.devices[vnr]
    holders.release(holders.registry_dir(node.environ), dev.backing)
    disk = node.disk(dev.backing)
    if disk.exists():
        if res.role == "Primary":
            disk.flags &= ~MDF_PRIMARY_IND
        disk.sync_md()
    dev.disk, dev.backing, dev.meta, dev.size_kib = "Diskless", None, None, 0


# --- connect / disconnect / down --------------------------------------------------------
def connect(node: Node, name: str, pid: int, discard: bool = False) -> None:
    res, conn = connection_of(node, name, pid)
    if conn.cstate != "StandAlone":
        raise DrbdError("fail", 125, obj=name)
    if discard and res.role == "Primary":
        raise DrbdError("fail", 123, text="--discard-my-data not allowed when primary.", obj=name)
    conn.cstate = "Connecting"
    conn.discard = discard
    conn.sb = None
    node.save(res)
    advance(node, res)


def disconnect(node: Node, name: str, pid: int, force: bool = False) -> None:
    res, conn = connection_of(node, name, pid)
    advance(node, res)
    if conn.cstate == "StandAlone":
        return
    _teardown(node, res, pid, conn)
    node.save(res)
    network.publish(node, res)


def _teardown(node: Node, res: Resource, pid: int, conn: Connection) -> None:
    """A graceful disconnect: the session is closed for both sides. A Secondary that
    leaves a Primary peer outdates itself, and the Primary learns that."""
    outdated = None
    if conn.epoch is not None and conn.paths:
        local, peer = conn.paths[0]
        with SessionFile(node.net, local, peer) as sfile:
            sess = sfile.load()
            if sess and sess.is_open(conn.epoch):
                if conn.fencing and res.role == "Secondary" and conn.peer_role == "Primary":
                    outdated = res.node_id
                    for dev in res.devices.values():
                        if dev.backing and dev.disk == "UpToDate":
                            node.set_disk_state(dev, "Outdated")
                elif conn.fencing and res.role == "Primary" and conn.peer_role == "Secondary":
                    outdated = pid
                sess.closed = "disconnect"
                sess.outdated = outdated
                sfile.save(sess)
        was_primary = res.role
        lose_connection(node, res, pid, conn, sess if sess and sess.epoch == conn.epoch else None, "TearDown")
        if outdated == pid:
            for pd in conn.pd.values():
                pd.pdisk = "Outdated"
        res.role = was_primary
        if conn.fence_id and outdated == pid:
            conn.fence_id = None
            res.susp_fen = False
    conn.epoch = None
    conn.cstate = "StandAlone"
    conn.peer_role = "Unknown"
    for pd in conn.pd.values():
        pd.off(pd.pdisk if pd.pdisk == "Outdated" else "DUnknown")


def del_peer(node: Node, name: str, pid: int) -> None:
    res, conn = connection_of(node, name, pid)
    if conn.cstate != "StandAlone":
        _teardown(node, res, pid, conn)
    network.withdraw(node, res, {p[0] for p in conn.paths})
    del res.conns[pid]
    node.save(res)
    network.publish(node, res)


def down(node: Node, name: str) -> None:
    res = node.load(name)
    if res is None:
        return  # drbdsetup down of an unknown resource is a no-op (missing_ok)
    advance(node, res)
    if res.role == "Primary" and res.openers:
        raise DrbdError("state", -12, obj=name)
    for pid, conn in res.conns.items():
        if conn.cstate != "StandAlone":
            _teardown(node, res, pid, conn)
    res.role = "Secondary"
    for vnr, dev in res.devices.items():
        if dev.backing:
            _release_disk(node, res, vnr)
    network.withdraw(node, res)
    node.forget(name)
