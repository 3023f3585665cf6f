"""The network between simulated DRBD nodes: all a node learns about another comes
through here.

``XENHA_SIM_DRBD_NET`` (default /run/xenha-sim/drbd-net) is shared by all nodes:

    ep/<ip>:<port>         what nodes advertise on a local endpoint: per resource an
                           `records.Advert` (incarnation, node-id, role, disk states,
                           generation identifiers, bitmaps, what it wants of each
                           connection)
    sess/<A>_<B>           the `records.Session` of the connection between two
                           endpoints: both ends read the same handshake decision (who
                           is sync source, which blocks, when the resync started,
                           split brain) and see when the other closed it
    wire/<node>/<disk>/    the replication stream into one disk of one node: data
                           blocks sent by its peers (protocol C: a write is
                           acknowledged once it is in the peer's queue, which the peer
                           applies, in order, before anything else it does with that
                           disk — also after a crash) and resync data
    cut/<ipA>-<ipB>        a network failure between two addresses (sorted), or
    cut/<ip>               of one address, seen by both sides: the test worlds'
                           fault injection

Whether a link is up is decided in one place, `link_cut`: a cut file cuts it; on a
node that runs a kernel process (`kernel`, registered in the node's state: `link`)
the link is up only while that process holds a live TCP connection on the path, with
DRBD's own timers (ping-int, ping-timeout, timeout, connect-int); a node without one
(lazy evaluation) has every link up that no cut file cuts.

Every file is locked (flock on `<file>.lock`) while it is read and rewritten.
"""

from __future__ import annotations

import itertools
import os
import time

from xenha_lab.sim.drbd import link, store
from xenha_lab.sim.drbd.records import Advert, PeerWish, Session, VolumeView

_SEQUENCE = itertools.count(1)     # orders this process's messages sent within one nanosecond


# --- addresses ---------------------------------------------------------------------
def addr_ip(addr: str) -> str:
    """'ipv4:10.0.0.1:7789' -> '10.0.0.1'."""
    body = addr.split(":", 1)[1] if addr.startswith(("ipv4:", "ipv6:", "ssocks:", "sdp:")) else addr
    if body.startswith("["):
        return body[1:body.index("]")]
    return body.rsplit(":", 1)[0]


def norm_addr(addr: str) -> str:
    """drbdsetup's address_str form: 'ipv4:A:P' (ipv4 is the default family, 7788 the port)."""
    if not addr.startswith(("ipv4:", "ipv6:", "ssocks:", "sdp:")):
        addr = "ipv4:" + addr
    family, body = addr.split(":", 1)
    if body.startswith("["):
        return addr if "]:" in body else addr + ":7788"
    if ":" not in body:
        body += ":7788"
    return f"{family}:{body}"


# --- links -------------------------------------------------------------------------
def link_cut(node, local: str, peer: str) -> bool:
    """Whether this node's link on the path between two addresses (ipv4:A:P) is down:
    cut by a cut file, or (with a kernel process) without a live TCP connection."""
    ip_a, ip_b = addr_ip(local), addr_ip(peer)
    base = os.path.join(node.net, "cut")
    lo, hi = sorted((ip_a, ip_b))
    if (os.path.exists(os.path.join(base, f"{lo}-{hi}")) or os.path.exists(os.path.join(base, ip_a))
            or os.path.exists(os.path.join(base, ip_b))):
        return True
    links = link.kernel_links(node.state)
    return links is not None and not links.get(link.link_key(local, peer), False)


def kernel_running(node) -> bool:
    """Whether a kernel process keeps this node's links (else: lazy evaluation)."""
    return link.kernel_links(node.state) is not None


# --- endpoints: what nodes advertise ------------------------------------------------
def ep_file(net: str, addr: str) -> str:
    return os.path.join(net, "ep", addr.split(":", 1)[1] if addr.startswith("ipv4:") else addr)


def read_advert(node, addr: str, resname: str) -> Advert | None:
    """What the node listening on `addr` advertises for resource `resname`."""
    table = store.read(ep_file(node.net, addr))
    data = table.get(resname) if table else None
    return Advert.load(data) if data else None


def volume_view(node, res, vnr: int) -> VolumeView:
    """Volume `vnr` of a resource of this node, as a handshake sees it."""
    dev = res.devices[vnr]
    view = VolumeView(nid=res.node_id, token=node.token, disk=dev.disk)
    if dev.backing:
        disk = node.disk(dev.backing)
        if disk.exists():
            view.key, view.cur, view.hist, view.bm = disk.key, disk.cur, list(disk.hist), dict(disk.bm)
            view.oos = {p: (v if v == "all" else set(v)) for p, v in disk.oos.items()}
            view.size = dev.size_kib
    return view


def publish(node, res) -> None:
    """Advertise this resource on each local endpoint of its paths."""
    addrs = {local for conn in res.conns.values() for local, _peer in conn.paths}
    if not addrs:
        return
    advert = Advert(inc=res.inc, token=node.token, node_id=res.node_id, role=res.role, susp=res.suspended,
                    vols={vnr: volume_view(node, res, vnr) for vnr in res.devices},
                    conns={pid: PeerWish(want=c.cstate != "StandAlone", peer_addr=c.paths[0][1] if c.paths else "",
                                         two_pri=c.two_primaries, discard=c.discard)
                           for pid, c in res.conns.items()}).dump()

    def add(table):
        table[res.name] = advert

    store.makedirs(os.path.join(node.net, "ep"))
    for addr in addrs:
        _update_table(ep_file(node.net, addr), add)


def withdraw(node, res, addrs=None) -> None:
    """Stop advertising a resource (on the given local addresses, default all of its)."""
    if addrs is None:
        addrs = {local for c in res.conns.values() for local, _peer in c.paths}
    for addr in addrs:
        path = ep_file(node.net, addr)
        if os.path.exists(path):
            _update_table(path, lambda table: table.pop(res.name, None))


def withdraw_node(net: str, token: str | None = None, ips=None) -> None:
    """Take a powered-off node off the network: drop its advertisements (by node token or
    by its addresses). The lab's power switch calls this when it cuts a node's power."""
    base = os.path.join(net, "ep")
    try:
        names = os.listdir(base)
    except OSError:
        return

    def drop_token(table):
        for resname, data in list(table.items()):
            if Advert.load(data).token == token:
                del table[resname]

    for name in names:
        if name.endswith(".lock") or ".tmp" in name:
            continue
        if ips and name.rsplit(":", 1)[0] in ips:
            _update_table(os.path.join(base, name), dict.clear)
        elif token:
            _update_table(os.path.join(base, name), drop_token)


def _update_table(path: str, change) -> None:
    """Edit the table of adverts at one endpoint (resource name -> Advert data) under
    its lock: `change(table)` edits it in place; an emptied table goes away."""
    lock = store.flock(path + ".lock")
    try:
        table = store.read(path) or {}
        before = dict(table)
        change(table)
        if table != before:
            if table:
                store.write(path, table)
            else:
                store.unlink(path)
    finally:
        os.close(lock)


# --- sessions ----------------------------------------------------------------------
class SessionBusy(Exception):
    """The session's lock was not had in time (see SessionFile's `wait`)."""


class SessionFile:
    """The session record of the connection between two endpoints (ipv4:A:P), locked
    for as long as `with` holds it (both ends take the same lock). With `wait`, entering
    raises SessionBusy after that many seconds: a holder of the node lock must not wait
    for ever, since the peer's side may hold the session while its node lock is given up
    around a helper (before-resync-target) and then wait for that node lock again."""

    __slots__ = ("path", "_fd", "wait")

    def __init__(self, net: str, local: str, peer: str, wait: float | None = None):
        a, b = sorted((local.split(":", 1)[1], peer.split(":", 1)[1]))
        self.path = os.path.join(net, "sess", f"{a}_{b}")
        self._fd = None
        self.wait = wait

    def __enter__(self):
        self._fd = store.flock(self.path + ".lock", self.wait)
        if self._fd is None:
            raise SessionBusy(self.path)
        return self

    def __exit__(self, *exc):
        os.close(self._fd)
        self._fd = None

    def load(self) -> Session | None:
        data = store.read(self.path)
        return Session.load(data) if data else None

    def save(self, sess: Session) -> None:
        store.write(self.path, sess.dump())


# --- the wire ----------------------------------------------------------------------
def send(node, token: str, key: str, msg: dict) -> None:
    """Queue a message for disk `key` of node `token`: {"type": "write", "blk", "data"}
    or {"type": "resync", "sid", "full", "blocks"}."""
    queue = os.path.join(node.net, "wire", token, key)
    store.makedirs(queue)
    name = f"{time.time_ns():020d}-{os.getpid()}-{next(_SEQUENCE)}"
    store.write(os.path.join(queue, name), msg)


def receive(node, disk) -> None:
    """Apply what peers sent to one of this node's disks (replication stream and resync
    data), in order. Resync data waits until this node allowed that resync
    (`disk.rs_ready`: before-resync-target ran)."""
    queue = os.path.join(node.net, "wire", node.token, disk.key)
    try:
        names = sorted(os.listdir(queue))
    except OSError:
        return
    if not names or not disk.exists():
        return
    changed = False
    for name in names:
        if ".tmp" in name:
            continue
        path = os.path.join(queue, name)
        msg = store.read(path)
        if msg and msg["type"] == "resync" and msg["sid"] not in disk.rs_ready:
            continue
        store.unlink(path)
        if not msg:
            continue
        changed = True
        if msg["type"] == "write":
            disk.store(msg["blk"], msg["data"])
        elif msg["type"] == "resync":
            if msg["full"]:
                disk.blocks = dict(msg["blocks"])
            else:
                for blk, data in msg["blocks"].items():
                    disk.store(blk, data)
            disk.received.append(msg["sid"])
            del disk.received[:-16]
    if changed:
        disk.save()
