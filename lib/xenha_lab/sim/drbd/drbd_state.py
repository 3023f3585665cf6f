"""The simulated DRBD 9 kernel behind `drbdsetup` (xenha_lab.sim.drbd.drbdsetup) and `drbdsetup-84`.

This machine has no DRBD module, so the *kernel* is simulated while the real user-space
tools stay real: real `drbdadm` 9.22 parses the configuration and runs the `drbdsetup`
found first on PATH (shared/reference/tools.md §2, §5.1), and real `drbdmeta` writes the
meta-data that `drbdadm create-md` asks for. There are no daemons: every time-dependent
change (handshake, resync progress, the end of a resync) is evaluated lazily, under the
node's lock, whenever a drbdsetup command (or the test API, xenha_lab.sim.drbd.drbd_world) runs on
either node, from timestamps.

Three places hold state (all paths come from the environment):

``XENHA_SIM_DRBD_STATE`` (default /run/xenha-sim/drbd), VOLATILE, per node
    what the kernel keeps in RAM: ``resources/<name>`` (one record per configured
    resource: node-id, role, devices, connections, paths, options, states),
    ``usermode_helper`` (the module parameter; default /sbin/drbdadm, as the real
    module), ``helpers`` (call/response notifications for events2), ``lock``.
    It lives on tmpfs in the lab, so a powered-off node loses it as a real one would.

``XENHA_SIM_DRBD_DISKS`` (default /var/lib/xenha-sim/drbd-disks), PERSISTENT, per node
    what the backing device holds: one record per backing device, keyed by its path
    (``/dev/loop3`` -> ``!dev!loop3``): generation identifiers (current, bitmap per
    peer, history), the meta-data flags (consistent, was-up-to-date, primary,
    crashed-primary, peer-outdated), the out-of-sync bitmap per peer (a set of 4 KiB
    block numbers, or "all" for a full sync) and the data blocks written through the
    device. This is a sidecar rather than the device itself, so that data blocks can be
    inspected by tests; the device's real DRBD meta-data (created by real drbdmeta) is
    still read at attach (magic number: attach without meta-data fails like the kernel,
    ``(119) No valid meta-data signature found``) and the current UUID and flags are
    written back into it, so that ``drbdadm dstate``/``get-gi`` on a down resource
    (which run real drbdmeta) see what the simulated kernel left, and a new
    ``drbdadm create-md`` is noticed (the sidecar is then reset).

``XENHA_SIM_DRBD_NET`` (default /run/xenha-sim/drbd-net), SHARED by all nodes
    the network: ``ep/<ip>:<port>`` what a node advertises on a local endpoint (the
    resources listening/connecting there: incarnation, node-id, role, disk states,
    generation identifiers, bitmaps), ``sess/<A>_<B>`` the handshake/session record of
    one connection (both sides read the same decision: who is sync source, which
    blocks, when the resync started, split brain), ``wire/<node>/<disk-key>/`` the
    replication stream: data blocks sent to a peer's disk (protocol C: a write is
    acknowledged once it is in the peer's queue, which the peer applies, in order,
    before anything else it does with that disk — also after a crash), and
    ``cut/<ipA>-<ipB>`` (sorted) or ``cut/<ip>``: a network failure between two
    addresses, or of one address, seen by both sides.

A node is identified by ``XENHA_SIM_DRBD_NODE``, else ``__DRBD_NODE__`` (what drbdadm
pretends to be), else the UTS hostname.

Facts and where they come from (code was read for facts only, none is copied):
- exit codes and message formats of drbdsetup's check_error (10 for ``Failure: (NNN)``,
  11 for ``State change failed: (N)``, 17 for -2, 5 for -16, 16 for -4, 20 otherwise),
  the error texts (drbdsetup's error_messages, ``strings /usr/sbin/drbdsetup``,
  shared/samples/drbd_13_state_change_error_strings.txt), the status / status --json /
  events2 / show layouts: LINBIT/drbd-utils user/v9/drbdsetup.c and the 9.22 binary's
  format strings (9.22 has no ``open:`` key and no ``paths`` in status --json);
  events2 lines as in the v9.22 golden tests (shared/samples/drbd_12*).
- the usermode helper: the kernel runs ``<usermode_helper> <cmd> <resource>`` with
  HOME=/ TERM=linux PATH=/sbin:/usr/sbin:/bin:/usr/bin, DRBD_MY_ADDRESS/AF,
  DRBD_PEER_ADDRESS/AF, DRBD_PEER_NODE_ID, DRBD_CSTATE, DRBD_MINOR_<v>,
  DRBD_BACKING_DEV_<v> and, for fence-peer/unfence-peer, UP_TO_DATE_NODES; fence-peer
  exit codes 3 (peer Inconsistent), 4 (peer Outdated), 5 (peer unreachable: Outdated
  if we are UpToDate), 6 (outdate myself), 7 (peer STONITHed: Outdated), anything else
  leaves I/O frozen; I/O is suspended (suspended:fencing) while the handler runs with
  ``fencing resource-and-stonith``; unfence-peer is called on the sync source once a
  resync ends with all disks UpToDate (LINBIT/drbd drbd_nl.c drbd_khelper,
  conn_try_outdate_peer, drbd_sender.c drbd_resync_finished).
- promotion (drbd_set_role): -1 two primaries unless allow-two-primaries, -2 without
  access to UpToDate data (a Consistent disk with an unknown peer first runs fence-peer
  and is then promoted), -7 when fencing is on and an unreachable peer is not known to
  be outdated (fence-peer is run first; with --force a failed fence forces anyway).
- the initial disk state after attach (disk_state_from_md): Inconsistent without the
  consistent flag, Outdated without was-up-to-date, else UpToDate without fencing or
  when all peers are known outdated, Consistent otherwise.

Deviations to know about: the helper environment also carries the simulator's own
XENHA_SIM_DRBD_* variables (so that a handler's drbdsetup calls reach the same simulated
node); a resync ends at the first evaluation on either side after its time is up (the
source queues the resync data when it first looks after the handshake, so a resync
needs at least one command on the source); a node that loses power must be taken off
the network by whoever cuts the power (`withdraw_node`), since nothing runs to notice.

What is simplified (not faithful): one path per connection is used; the handshake is
immediate once both sides see each other; resync speed is a fixed rate (env
``XENHA_SIM_DRBD_RESYNC_RATE`` KiB/s, else the disk option --c-max-rate or
--resync-rate, else 100 MiB/s, the c-max-rate default); an interrupted full sync starts
over; after-split-brain policies other than ``disconnect`` are not applied (split brain
always ends StandAlone on both sides; ``connect --discard-my-data`` resolves it);
auto-promote, quorum and verify are not modelled; the activity log is not modelled.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import sys
import time

from xenha_lab.paths import child_code

# --- constants (DRBD names) ----------------------------------------------------------
DEFAULT_STATE = "/run/xenha-sim/drbd"
DEFAULT_DISKS = "/var/lib/xenha-sim/drbd-disks"
DEFAULT_NET = "/run/xenha-sim/drbd-net"
DEFAULT_HELPER = "/sbin/drbdadm"
DEFAULT_RATE_KIB = 102400          # c-max-rate default, 100 MiB/s
BLOCK = 4096                       # bitmap granularity and the unit of simulated writes
UUID_JUST_CREATED = 4

# disk states in the order of enum drbd_disk_state
DISK_ORDER = ["Diskless", "Attaching", "Detaching", "Failed", "Negotiating", "Inconsistent",
              "Outdated", "DUnknown", "Consistent", "UpToDate"]
DRANK = {name: i for i, name in enumerate(DISK_ORDER)}

# drbd_ret_code texts (drbdsetup error_messages)
ERR = {
    104: "Can not open backing device.",
    107: "Lower device is not a block device.",
    111: "Low.dev. smaller than requested DRBD-dev. size.",
    114: "Lower device is already claimed. This usually means it is mounted.",
    119: "No valid meta-data signature found.\n\n\t==> Use 'drbdadm create-md res' to initialize "
         "meta-data area. <==\n",
    124: "Device is attached to a disk (use detach first)",
    125: "Device has a net-config (use disconnect first)",
    126: "UnknownMandatoryTag",
    127: "Device minor not allocated",
    138: "Device does not have a disk-config",
    151: "Need to be StandAlone",
    154: "Fencing policy resource-and-stonith only with prot B or C allowed",
    158: "Unknown resource",
    159: "Resource still in use (delete all minors first)",
    160: "Minor still configured (down it first)",
    161: "Minor or volume exists already (delete it first)",
    162: "Invalid configuration request",
    164: "Can not clear allow_two_primaries as long as\nthere a primaries on both sides",
}
# drbd_state_rv texts (drbd_strings.c)
SS = {
    -1: "Multiple primaries not allowed by config",
    -2: "Need access to UpToDate data",
    -4: "Can not resync without local disk",
    -5: "Can not resync without remote disk",
    -6: "Refusing to be Outdated while Connected",
    -7: "Refusing to be Primary while peer is not outdated",
    -8: "Can not start OV/resync since it is already active",
    -9: "Can not disconnect a StandAlone device",
    -10: "State change was refused by peer node",
    -11: "Device is diskless, the requested operation requires a disk",
    -12: "Device is held open by someone",
    -13: "Have no net/connection configuration",
    -15: "Need a connection to start verify or resync",
    -16: "Disk state is lower than outdated",
    -18: "In transient state, retry after next state change",
}

# option defaults as `drbdsetup show` knows them (shown only when different)
NET_DEFAULTS = {"protocol": "C", "allow-two-primaries": "no", "fencing": "dont-care",
                "after-sb-0pri": "disconnect", "after-sb-1pri": "disconnect",
                "after-sb-2pri": "disconnect", "discard-my-data": "no", "tentative": "no"}
FENCING = {"dont-care": 0, "resource-only": 1, "resource-and-stonith": 2}


class DrbdError(Exception):
    """A failure as drbdsetup's check_error reports it."""

    def __init__(self, kind: str, code: int, text: str | None = None, obj: str | None = None):
        super().__init__(text or "")
        self.kind, self.code, self.text, self.obj = kind, code, text, obj

    def render(self, objname: str) -> tuple[int, str]:
        obj = self.obj if self.obj is not None else objname
        if self.kind == "fail":
            text = self.text if self.text is not None else ERR.get(self.code, "Unknown... maybe API_VERSION mismatch?")
            return 10, f"{obj}: Failure: ({self.code}) {text}\n"
        if self.kind == "state":
            text = SS.get(self.code, "unknown error")
            rc = {-2: 17, -16: 5, -4: 16}.get(self.code, 11)
            return rc, f"{obj}: State change failed: ({self.code}) {text}\n"
        return self.code, (self.text or "")


# --- small file helpers ----------------------------------------------------------------
def _read(path: str):
    try:
        with open(path, "rb") as handle:
            return marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None


def _write(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(marshal.dumps(obj))
    os.replace(tmp, path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _makedirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def disk_key(path: str) -> str:
    return path.replace("/", "!")


def new_uuid() -> int:
    # generation identifiers: random 64 bit, lowest bit (the "primary" bit) clear
    return int.from_bytes(os.urandom(8), "big") & ~1 or 8


def env_paths(environ=None):
    environ = os.environ if environ is None else environ
    return (environ.get("XENHA_SIM_DRBD_STATE") or DEFAULT_STATE,
            environ.get("XENHA_SIM_DRBD_DISKS") or DEFAULT_DISKS,
            environ.get("XENHA_SIM_DRBD_NET") or DEFAULT_NET)


def node_token(environ=None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("XENHA_SIM_DRBD_NODE") or environ.get("__DRBD_NODE__") or os.uname().nodename


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


# --- backing devices: the real meta-data block ------------------------------------------
MD_MAGIC_09 = 0x8374026D
MD_MAGIC_08 = (0x83740267 + 4, 0x83740267 + 5)


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def md_superblock(path: str):
    """(offset, current_uuid, flags, magic) of flexible internal meta-data, or None."""
    try:
        size = device_size(path)
        if size < 8192:
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            offset = size - 4096
            os.lseek(fd, offset, os.SEEK_SET)
            block = os.read(fd, 64)
        finally:
            os.close(fd)
    except OSError:
        return None
    if len(block) < 64:
        return None
    magic = int.from_bytes(block[60:64], "big")
    if magic != MD_MAGIC_09 and magic not in MD_MAGIC_08:
        return None
    return offset, int.from_bytes(block[8:16], "big"), int.from_bytes(block[56:60], "big"), magic


def md_writeback(path: str, offset: int, current_uuid: int, flags: int) -> None:
    """Write current UUID and flags into the real superblock (what drbd_md_sync would)."""
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, current_uuid.to_bytes(8, "big"), offset + 8)
            os.pwrite(fd, (flags & 0xFFFFFFFF).to_bytes(4, "big"), offset + 56)
        finally:
            os.close(fd)
    except OSError:
        pass


def usable_kib(size_bytes: int, max_peers: int = 1) -> int:
    """Device size left by flexible internal meta-data (bitmap + 32 KiB AL + 4 KiB sb)."""
    blocks = size_bytes // BLOCK
    words = (blocks + 63) // 64
    bm_bytes = (words * 8 * max_peers + 4095) // 4096 * 4096
    md_bytes = bm_bytes + 4096 + 32768
    return max(0, (size_bytes - md_bytes) // 1024)


# meta-data flags (drbd_meta_data.h)
MDF_CONSISTENT, MDF_PRIMARY_IND, MDF_WAS_UP_TO_DATE, MDF_CRASHED_PRIMARY, MDF_AL_CLEAN = 1, 2, 16, 64, 128


class Disk:
    """The persistent record of one backing device (see the module docstring)."""

    def __init__(self, node: "Node", path: str):
        self.node, self.path = node, path
        self.key = disk_key(path)
        self.file = os.path.join(node.disks, self.key)
        self.d = _read(self.file)

    def exists(self) -> bool:
        return self.d is not None

    def fresh(self, md_uuid: int) -> None:
        self.d = {"md_uuid": md_uuid, "cur": UUID_JUST_CREATED, "hist": [], "bm": {}, "flags": 0,
                  "oos": {}, "blocks": {}, "peer_outdated": {}, "written_kib": 0}

    def save(self) -> None:
        _makedirs(self.node.disks)
        _write(self.file, self.d)

    def md_flags(self) -> int:
        return self.d["flags"] | MDF_AL_CLEAN

    def sync_md(self) -> None:
        """Persist the record and mirror current UUID + flags into the real superblock."""
        sb = md_superblock(self.path)
        if sb is not None:
            md_writeback(self.path, sb[0], self.d["cur"], self.md_flags())
            self.d["md_uuid"] = self.d["cur"]
        self.save()

    def consistent_state(self) -> str:
        flags = self.d["flags"]
        if not flags & MDF_CONSISTENT:
            return "Inconsistent"
        if not flags & MDF_WAS_UP_TO_DATE:
            return "Outdated"
        return "UpToDate"

    def set_state_flags(self, disk: str) -> None:
        flags = self.d["flags"] & ~(MDF_CONSISTENT | MDF_WAS_UP_TO_DATE)
        if disk == "UpToDate":
            flags |= MDF_CONSISTENT | MDF_WAS_UP_TO_DATE
        elif disk in ("Consistent",):
            flags |= MDF_CONSISTENT | (self.d["flags"] & MDF_WAS_UP_TO_DATE)
        elif disk == "Outdated":
            flags |= MDF_CONSISTENT
        self.d["flags"] = flags

    def oos_add(self, peer: int, blk: int) -> None:
        current = self.d["oos"].get(peer, set())
        if current == "all":
            return
        current = set(current)
        current.add(blk)
        self.d["oos"][peer] = current

    def drain(self) -> None:
        """Apply what peers sent to this disk (replication stream and resync data)."""
        queue = os.path.join(self.node.net, "wire", self.node.token, self.key)
        try:
            names = sorted(os.listdir(queue))
        except OSError:
            return
        if not names or self.d is None:
            return
        changed = False
        ready = self.d.get("rs_ready", [])
        for name in names:
            if ".tmp" in name:
                continue
            path = os.path.join(queue, name)
            msg = _read(path)
            if msg and msg["type"] == "resync" and msg["sid"] not in ready:
                continue   # not before before-resync-target ran here (see _target_ready)
            _unlink(path)
            if not msg:
                continue
            changed = True
            if msg["type"] == "write":
                self._store(msg["blk"], msg["data"])
            elif msg["type"] == "resync":
                if msg["full"]:
                    self.d["blocks"] = dict(msg["blocks"])
                else:
                    for blk, data in msg["blocks"].items():
                        self._store(blk, data)
                received = self.d.setdefault("received", [])
                received.append(msg["sid"])
                del received[:-16]
        if changed:
            self.save()

    def _store(self, blk: int, data) -> None:
        if data is None:
            self.d["blocks"].pop(blk, None)
        else:
            self.d["blocks"][blk] = data


# --- one node --------------------------------------------------------------------------
class Node:
    """The simulated kernel of one node: its volatile state, its disks, the shared net."""

    def __init__(self, state: str | None = None, disks: str | None = None, net: str | None = None,
                 token: str | None = None, environ=None):
        s, d, n = env_paths(environ)
        self.state, self.disks, self.net = state or s, disks or d, net or n
        self.token = token or node_token(environ)
        self.environ = os.environ if environ is None else environ
        self._lock_fd = None
        self.depth = 0
        self.now = time.time()

    # locking
    def __enter__(self):
        if self.depth == 0:
            _makedirs(os.path.join(self.state, "resources"))
            self._lock_fd = os.open(os.path.join(self.state, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.depth += 1
        self.now = time.time()
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0:
            os.close(self._lock_fd)
            self._lock_fd = None

    def unlocked(self):
        """Drop the node lock temporarily (the kernel gives up state_sem around helpers)."""
        node = self

        class _Unlocked:
            def __enter__(self):
                node._saved_depth = node.depth
                os.close(node._lock_fd)
                node._lock_fd, node.depth = None, 0

            def __exit__(self, *exc):
                depth = node._saved_depth
                node.__enter__()
                node.depth = depth
        return _Unlocked()

    # resources
    def res_path(self, name: str) -> str:
        return os.path.join(self.state, "resources", name)

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(os.path.join(self.state, "resources")) if ".tmp" not in n)
        except OSError:
            return []

    def load(self, name: str):
        return _read(self.res_path(name))

    def save(self, res: dict) -> None:
        _makedirs(os.path.join(self.state, "resources"))
        _write(self.res_path(res["name"]), res)

    def all(self) -> list[dict]:
        out = []
        for name in self.names():
            res = self.load(name)
            if res:
                out.append(res)
        return out

    def get(self, name: str) -> dict:
        res = self.load(name)
        if res is None:
            raise DrbdError("fail", 158, obj=name)
        return res

    def by_minor(self, minor: int):
        for res in self.all():
            for vnr, dev in res["devices"].items():
                if dev["minor"] == minor:
                    return res, vnr
        return None, None

    def disk(self, path: str) -> Disk:
        return Disk(self, path)

    def usermode_helper(self) -> str:
        try:
            with open(os.path.join(self.state, "usermode_helper"), encoding="utf-8") as handle:
                return handle.read().strip() or DEFAULT_HELPER
        except OSError:
            return DEFAULT_HELPER

    def rate_kib(self, res: dict, vnr: int) -> float:
        env = self.environ.get("XENHA_SIM_DRBD_RESYNC_RATE")
        if env:
            return max(1.0, float(env))
        opts = res["devices"][vnr].get("dopts", {})
        for key in ("c-max-rate", "resync-rate"):
            if key in opts:
                return max(1.0, parse_size_kib(opts[key]))
        return float(DEFAULT_RATE_KIB)

    # helper notifications (events2 call/response lines)
    def note_helper(self, line: str) -> None:
        _makedirs(self.state)
        with open(os.path.join(self.state, "helpers"), "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def parse_size_kib(text: str) -> float:
    units = {"k": 1, "K": 1, "m": 1024, "M": 1024, "g": 1024 * 1024, "G": 1024 * 1024}
    text = str(text).strip()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


# --- the shared network ----------------------------------------------------------------
def _cut(node: Node, ip_a: str, ip_b: str) -> bool:
    base = os.path.join(node.net, "cut")
    lo, hi = sorted((ip_a, ip_b))
    return (os.path.exists(os.path.join(base, f"{lo}-{hi}")) or os.path.exists(os.path.join(base, ip_a))
            or os.path.exists(os.path.join(base, ip_b)))


def ep_file(node: Node, addr: str) -> str:
    return os.path.join(node.net, "ep", addr.split(":", 1)[1] if addr.startswith("ipv4:") else addr)


def read_advert(node: Node, addr: str, resname: str):
    data = _read(ep_file(node, addr))
    return data.get(resname) if data else None


def publish(node: Node, res: dict) -> None:
    """Advertise this resource on each local endpoint of its paths."""
    addrs = set()
    for conn in res["conns"].values():
        for local, _peer in conn["paths"]:
            addrs.add(local)
    if not addrs:
        return
    vols = {}
    for vnr, dev in res["devices"].items():
        info = {"disk": dev["disk"], "key": None}
        if dev.get("backing"):
            disk = node.disk(dev["backing"])
            if disk.exists():
                info.update(key=disk.key, cur=disk.d["cur"], hist=list(disk.d["hist"]), bm=dict(disk.d["bm"]),
                            oos={p: (v if v == "all" else set(v)) for p, v in disk.d["oos"].items()},
                            size=dev.get("size_kib", 0))
        vols[vnr] = info
    advert = {"inc": res["inc"], "token": node.token, "node_id": res["node_id"], "role": res["role"],
              "susp": bool(res.get("susp_user") or res.get("susp_fen")), "vols": vols,
              "conns": {pid: {"want": c["cstate"] != "StandAlone", "peer_addr": c["paths"][0][1] if c["paths"] else "",
                              "two_pri": c["nopts"].get("allow-two-primaries", "no") == "yes",
                              "discard": c.get("discard", False)}
                        for pid, c in res["conns"].items()},
              "time": node.now}
    _makedirs(os.path.join(node.net, "ep"))
    for addr in addrs:
        path = ep_file(node, addr)
        lock = _flock(path + ".lock")
        try:
            data = _read(path) or {}
            data[res["name"]] = advert
            _write(path, data)
        finally:
            os.close(lock)


def withdraw(node: Node, res: dict, addrs=None) -> None:
    if addrs is None:
        addrs = {local for c in res["conns"].values() for local, _peer in c["paths"]}
    for addr in addrs:
        path = ep_file(node, addr)
        if not os.path.exists(path):
            continue
        lock = _flock(path + ".lock")
        try:
            data = _read(path) or {}
            if data.pop(res["name"], None) is not None:
                if data:
                    _write(path, data)
                else:
                    _unlink(path)
        finally:
            os.close(lock)


def _flock(path: str) -> int:
    _makedirs(os.path.dirname(path))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def sess_file(node: Node, local: str, peer: str) -> str:
    a, b = sorted((local.split(":", 1)[1], peer.split(":", 1)[1]))
    return os.path.join(node.net, "sess", f"{a}_{b}")


def send(node: Node, token: str, key: str, msg: dict) -> None:
    queue = os.path.join(node.net, "wire", token, key)
    _makedirs(queue)
    name = f"{time.time_ns():020d}-{os.getpid()}-{node.seq()}"
    _write(os.path.join(queue, name), msg)


_SEQ = [0]


def _seq() -> int:
    _SEQ[0] += 1
    return _SEQ[0]


Node.seq = staticmethod(_seq)


# --- records ---------------------------------------------------------------------------
def new_resource(node: Node, name: str, node_id: int, opts: dict) -> None:
    if node.load(name) is not None:
        return  # the kernel answers NO_ERROR for an existing resource without NLM_F_EXCL
    res = {"name": name, "node_id": node_id, "inc": os.urandom(8).hex(), "role": "Secondary",
           "susp_user": False, "susp_fen": False, "opts": dict(opts), "devices": {}, "conns": {},
           "openers": 0, "created": node.now}
    node.save(res)


def new_minor(node: Node, name: str, minor: int, vnr: int) -> None:
    res = node.get(name)
    other, _ = node.by_minor(minor)
    if other is not None or vnr in res["devices"]:
        raise DrbdError("fail", 161, obj=name)
    res["devices"][vnr] = {"minor": minor, "disk": "Diskless", "backing": None, "meta": None, "dopts": {},
                           "read": 0, "written": 0, "size_kib": 0}
    for conn in res["conns"].values():
        conn["pd"][vnr] = new_pd()
    node.save(res)


def new_pd() -> dict:
    return {"repl": "Off", "pdisk": "DUnknown", "rs": None}


def new_peer(node: Node, name: str, pid: int, opts: dict) -> None:
    res = node.get(name)
    if pid == res["node_id"] or pid < 0 or pid > 31:
        raise DrbdError("fail", 162, text="Invalid peer-node-id\n", obj=name)
    if pid in res["conns"]:
        raise DrbdError("fail", 161, text="Already exists", obj=name)
    if opts.get("fencing") == "resource-and-stonith" and opts.get("protocol", "C") == "A":
        raise DrbdError("fail", 154, obj=name)
    cname = opts.pop("_name", "")
    res["conns"][pid] = {"name": cname, "nopts": opts, "paths": [], "cstate": "StandAlone",
                         "peer_role": "Unknown", "epoch": None, "pd": {v: new_pd() for v in res["devices"]},
                         "fence": None, "discard": False, "lost": None}
    node.save(res)


def _resource_and_connection(node: Node, name: str, pid: int):
    """The resource and its connection to peer node-id pid (drbdsetup's error when none)."""
    res = node.get(name)
    conn = res["conns"].get(pid)
    if conn is None:
        raise DrbdError("plain", 10, f"{name}: No such connection\n")
    return res, conn


def net_options(node: Node, name: str, pid: int, opts: dict, set_defaults: bool) -> None:
    res, conn = _resource_and_connection(node, name, pid)
    opts.pop("_name", None)
    if opts.get("allow-two-primaries") == "no" and res["role"] == "Primary" and conn["peer_role"] == "Primary":
        raise DrbdError("fail", 164, obj=name)
    if set_defaults:
        conn["nopts"] = {}
    conn["nopts"].update(opts)
    node.save(res)


def new_path(node: Node, name: str, pid: int, local: str, peer: str) -> None:
    res, conn = _resource_and_connection(node, name, pid)
    local, peer = norm_addr(local), norm_addr(peer)
    if [local, peer] in conn["paths"]:
        raise DrbdError("fail", 102 + 0, text="Local address(port) already in use.", obj=name)
    conn["paths"].append([local, peer])
    node.save(res)


def del_path(node: Node, name: str, pid: int, local: str, peer: str) -> None:
    res, conn = _resource_and_connection(node, name, pid)
    pair = [norm_addr(local), norm_addr(peer)]
    if pair in conn["paths"]:
        if conn["cstate"] != "StandAlone" and len(conn["paths"]) == 1:
            raise DrbdError("fail", 151, obj=name)
        withdraw(node, res, {pair[0]})
        conn["paths"].remove(pair)
        node.save(res)


# --- attach / detach --------------------------------------------------------------------
def attach(node: Node, minor: int, backing: str, meta: str, idx: str, opts: dict, md_format: str = "v09") -> None:
    res, vnr = node.by_minor(minor)
    if res is None:
        raise DrbdError("fail", 127, obj=str(minor))
    dev = res["devices"][vnr]
    if dev["disk"] != "Diskless":
        raise DrbdError("fail", 124, obj=str(minor))
    try:
        st = os.stat(backing)
    except OSError:
        raise DrbdError("fail", 104, obj=str(minor)) from None
    if (st.st_mode & 0o170000) != 0o060000:
        raise DrbdError("fail", 104, obj=str(minor))
    for other in node.all():
        for d in other["devices"].values():
            if d.get("backing") == backing:
                raise DrbdError("fail", 114, obj=str(minor))
    sb = md_superblock(meta)
    if sb is None or (sb[3] != MD_MAGIC_09 if md_format == "v09" else sb[3] not in MD_MAGIC_08):
        raise DrbdError("fail", 119, obj=str(minor))
    disk = node.disk(backing)
    if not disk.exists() or disk.d.get("md_uuid") != sb[1]:
        # meta-data (re)created by drbdmeta: whatever the sidecar knew is gone
        disk.fresh(sb[1])
        if sb[1] != UUID_JUST_CREATED:
            disk.d["cur"] = sb[1]
            disk.d["flags"] = sb[2] & ~MDF_AL_CLEAN
        disk.save()
    disk.drain()
    dev.update(backing=backing, meta=meta, idx=idx, dopts=dict(opts), size_kib=usable_kib(device_size(backing)))
    _hold(node, backing, f"drbd{dev['minor']}")
    dev["disk"] = initial_disk_state(res, disk)
    if dev["disk"] == "UpToDate":
        disk.set_state_flags("UpToDate")
    disk.sync_md()
    node.save(res)


def initial_disk_state(res: dict, disk: Disk) -> str:
    state = disk.consistent_state()
    if state != "UpToDate":
        return state
    fencing = [pid for pid, c in res["conns"].items() if FENCING.get(c["nopts"].get("fencing", "dont-care"), 0)]
    if not fencing or all(disk.d["peer_outdated"].get(pid) for pid in fencing):
        return "UpToDate"
    return "Consistent"


def detach(node: Node, minor: int, force: bool = False) -> None:
    res, vnr = node.by_minor(minor)
    if res is None:
        raise DrbdError("fail", 127, obj=str(minor))
    evaluate(node, res)
    dev = res["devices"][vnr]
    if dev["disk"] == "Diskless":
        return
    if res["role"] == "Primary" and not force:
        peers_ok = any(c["epoch"] and c["pd"][vnr]["pdisk"] == "UpToDate" for c in res["conns"].values())
        if not peers_ok:
            raise DrbdError("state", -2, obj=str(minor))
    _release_disk(node, res, vnr)
    node.save(res)
    publish(node, res)


def _holder_path(node: Node, backing: str) -> str:
    # The block-device holders registry shared with the simulated LVM (xenha_lab.sim.lvm.lvm_state):
    # attaching opens the backing device exclusively, so an LV under DRBD shows `o`
    # (open) and refuses deactivation, as with a real kernel.
    directory = node.environ.get("XENHA_SIM_HOLDERS") or "/run/xenha-sim/holders"
    return os.path.join(directory, backing.replace("/", "!"))


def _hold(node: Node, backing: str, holder: str) -> None:
    path = _holder_path(node, backing)
    _makedirs(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(holder + "\n")


def _release_disk(node: Node, res: dict, vnr: int) -> None:
    dev = res["devices"][vnr]
    _unlink(_holder_path(node, dev["backing"]))
    disk = node.disk(dev["backing"])
    if disk.exists():
        if res["role"] == "Primary":
            disk.d["flags"] &= ~MDF_PRIMARY_IND
        disk.sync_md()
    dev.update(disk="Diskless", backing=None, meta=None, size_kib=0)


# --- evaluation: connections, handshake, resync -------------------------------------------
def side_info(node: Node, res: dict, vnr: int) -> dict:
    dev = res["devices"][vnr]
    info = {"nid": res["node_id"], "disk": dev["disk"], "key": None, "token": node.token}
    if dev.get("backing"):
        disk = node.disk(dev["backing"])
        info.update(key=disk.key, cur=disk.d["cur"], hist=list(disk.d["hist"]), bm=dict(disk.d["bm"]),
                    oos={p: v for p, v in disk.d["oos"].items()}, size=dev["size_kib"])
    return info


def _rel(x: dict, y: dict) -> str:
    """x's relation to y from generation identifiers: 'same', 'newer', 'older', 'sb', 'unrelated'."""
    if x["cur"] == y["cur"]:
        return "same"
    xb, yb = x["bm"].get(y["nid"], 0), y["bm"].get(x["nid"], 0)
    if xb and yb and xb == yb:
        return "sb"
    if xb and xb == y["cur"]:
        return "newer"
    if yb and yb == x["cur"]:
        return "older"
    if y["cur"] in x["hist"] or y["cur"] == UUID_JUST_CREATED:
        return "newer-full"
    if x["cur"] in y["hist"] or x["cur"] == UUID_JUST_CREATED:
        return "older-full"
    return "unrelated"


def _union(a, b):
    if a == "all" or b == "all":
        return "all"
    return set(a or ()) | set(b or ())


def handshake(x: dict, y: dict, xdiscard: bool, ydiscard: bool, rate: float, now: float) -> dict:
    """The per-volume decision both sides agree on (stored in the session record)."""
    if not x.get("key") or not y.get("key"):
        return {"kind": "nodisk"}
    incon = ("Inconsistent", "Failed", "Attaching")
    rel = _rel(x, y)
    xi, yi = x["disk"] in incon, y["disk"] in incon
    if rel == "same":
        if xi and yi:
            return {"kind": "none", "both_inconsistent": True}
        if xi or yi:
            src, tgt = (y, x) if xi else (x, y)
            blocks = _union(src["oos"].get(tgt["nid"]), tgt["oos"].get(src["nid"]))
            if not blocks:
                blocks = "all"
            return _resync(src, tgt, blocks, rate, now)
        return {"kind": "none"}
    if rel in ("sb", "unrelated"):
        if xdiscard != ydiscard and rel == "sb":
            src, tgt = (y, x) if xdiscard else (x, y)
            return _resync(src, tgt, _union(x["oos"].get(y["nid"]), y["oos"].get(x["nid"])), rate, now)
        return {"kind": "splitbrain" if rel == "sb" else "unrelated"}
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
        blocks = _union(src["oos"].get(tgt["nid"]), tgt["oos"].get(src["nid"]))
    return _resync(src, tgt, blocks, rate, now)


def _resync(src: dict, tgt: dict, blocks, rate: float, now: float) -> dict:
    size = min(src.get("size") or 0, tgt.get("size") or 0) or src.get("size") or 0
    total = size if blocks == "all" else len(blocks) * (BLOCK // 1024)
    return {"kind": "resync", "src": src["nid"], "tgt": tgt["nid"], "blocks": blocks, "total": total,
            "start": now, "rate": rate, "sent": False, "sid": os.urandom(6).hex(), "src_cur": src["cur"],
            "done": False}


def rs_progress(rs: dict, now: float) -> float:
    """KiB resynced so far."""
    return min(rs["total"], max(0.0, (now - rs["start"]) * rs["rate"]))


def evaluate(node: Node, res: dict) -> None:
    """Bring a resource up to date with time and with what the peers did."""
    for dev in res["devices"].values():
        if dev.get("backing"):
            node.disk(dev["backing"]).drain()
    for pid in sorted(res["conns"]):
        _eval_conn(node, res, pid, res["conns"][pid])
    node.save(res)
    publish(node, res)


def _eval_conn(node: Node, res: dict, pid: int, conn: dict) -> None:
    if conn["cstate"] == "StandAlone" or not conn["paths"]:
        return
    local, peer = conn["paths"][0]
    sfile = sess_file(node, local, peer)
    lock = _flock(sfile + ".lock")
    try:
        sess = _read(sfile)
        adv = read_advert(node, peer, res["name"])
        link_ok = not _cut(node, addr_ip(local), addr_ip(peer))
        mine = adv["conns"].get(res["node_id"]) if adv else None
        peer_ok = bool(adv and adv["node_id"] == pid and mine and mine["want"] and mine["peer_addr"] == local)
        incs_ok = bool(sess and adv and sess["incs"].get(res["node_id"]) == res["inc"]
                       and sess["incs"].get(pid) == adv["inc"])
        if conn["epoch"] is not None:
            alive = link_ok and peer_ok and sess and sess["epoch"] == conn["epoch"] and not sess["closed"] and incs_ok
            if not alive:
                if sess and sess["epoch"] == conn["epoch"] and not sess["closed"]:
                    sess["closed"] = "network" if not link_ok else "peer"
                    _write(sfile, sess)
                graceful = bool(sess and sess["epoch"] == conn["epoch"] and sess.get("closed") == "disconnect"
                                and link_ok)
                _lost(node, res, pid, conn, sess if sess and sess["epoch"] == conn["epoch"] else None,
                      "NetworkFailure" if not link_ok or not graceful else "Unconnected")
            else:
                _follow(node, res, pid, conn, sess, adv)
                _write(sfile, sess)
                return
        aborted = sess and sess["closed"] in ABORTS and sess["epoch"] != conn.get("sb_seen") and \
            adv is not None and sess["incs"].get(res["node_id"]) == res["inc"] and \
            sess["incs"].get(pid) == adv["inc"]
        if aborted:
            _standalone_after(res, conn, sess)
            return
        if link_ok and peer_ok:
            if not (sess and not sess["closed"] and incs_ok):
                sess = _new_session(node, res, pid, conn, adv)
                _write(sfile, sess)
            if sess["closed"] in ABORTS:
                _standalone_after(res, conn, sess)
                return
            conn["epoch"] = sess["epoch"]
            conn["lost"] = None
            conn["discard"] = False
            if not _joined(node, res, pid, conn, sess, adv):
                _write(sfile, sess)       # the target refused the resync: connection dropped
                return
            _follow(node, res, pid, conn, sess, adv)
            _write(sfile, sess)
        else:
            conn["cstate"] = "Connecting"
    finally:
        os.close(lock)


ABORTS = ("splitbrain", "unrelated", "two-primaries")


def _standalone_after(res: dict, conn: dict, sess: dict) -> None:
    """Split brain (or unrelated data) found in the handshake: after-sb policy
    `disconnect` drops the connection; both sides end StandAlone."""
    conn["cstate"] = "StandAlone"
    conn["peer_role"] = "Unknown"
    conn["epoch"] = None
    conn["sb_seen"] = sess["epoch"]
    conn["sb"] = sess["closed"]
    for pd in conn["pd"].values():
        pd.update(repl="Off", pdisk="DUnknown", rs=None)


def _new_session(node: Node, res: dict, pid: int, conn: dict, adv: dict) -> dict:
    sess = {"epoch": os.urandom(6).hex(), "incs": {res["node_id"]: res["inc"], pid: adv["inc"]},
            "closed": None, "vols": {}, "created": node.now}
    both_primary = res["role"] == "Primary" and adv["role"] == "Primary"
    two_pri = conn["nopts"].get("allow-two-primaries", "no") == "yes" and adv["conns"][res["node_id"]]["two_pri"]
    for vnr in res["devices"]:
        if vnr not in adv["vols"]:
            continue
        x = side_info(node, res, vnr)
        y = dict(adv["vols"][vnr], nid=pid, token=adv["token"])
        rate = node.rate_kib(res, vnr)
        decision = handshake(x, y, conn.get("discard", False), adv["conns"][res["node_id"]].get("discard", False),
                             rate, node.now)
        if decision["kind"] in ("splitbrain", "unrelated"):
            sess["vols"]["_abort"] = decision["kind"]
        sess["vols"][vnr] = decision
    if both_primary and not two_pri and "_abort" not in sess["vols"]:
        sess["vols"]["_abort"] = "two-primaries"
    if "_abort" in sess["vols"]:
        sess["closed"] = sess["vols"]["_abort"]
    return sess


def _joined(node: Node, res: dict, pid: int, conn: dict, sess: dict, adv: dict) -> None:
    """Just connected: adopt the handshake's outcome for our side."""
    conn["cstate"] = "Connected"
    unfence = False
    for vnr, pd in conn["pd"].items():
        dec = sess["vols"].get(vnr)
        dev = res["devices"][vnr]
        if dec is None:
            pd.update(repl="Off", pdisk="DUnknown", rs=None)
            continue
        pd["rs"] = None
        if dec["kind"] == "none" and dev.get("backing"):
            disk = node.disk(dev["backing"])
            peer_disk = adv["vols"][vnr]["disk"]
            if not dec.get("both_inconsistent"):
                good = {"UpToDate", "Consistent", "Outdated"}
                if dev["disk"] in good and peer_disk in good and (
                        "UpToDate" in (dev["disk"], peer_disk) or "Consistent" in (dev["disk"], peer_disk)):
                    if dev["disk"] != "UpToDate":
                        dev["disk"] = "UpToDate"
                    disk.set_state_flags("UpToDate")
                disk.d["bm"].pop(pid, None)
                disk.d["oos"].pop(pid, None)
                if disk.d["peer_outdated"].pop(pid, None) and res["role"] == "Primary":
                    unfence = True
                disk.sync_md()
        if dec["kind"] == "resync":
            dec_side = "src" if dec["src"] == res["node_id"] else "tgt"
            if dec_side == "tgt" and dev.get("backing"):
                if not _target_ready(node, res, pid, conn, sess, vnr, dec):
                    return False
                dev["disk"] = "Inconsistent"
                disk = node.disk(dev["backing"])
                disk.set_state_flags("Inconsistent")
                disk.sync_md()
            elif dec_side == "tgt":
                dec["tgt_ready"] = True
    conn["unfence_pending"] = unfence
    if unfence and FENCING.get(conn["nopts"].get("fencing", "dont-care"), 0):
        spawn_helper(node, res, pid, "unfence-peer")
    return True


def _target_ready(node: Node, res: dict, pid: int, conn: dict, sess: dict, vnr: int, dec: dict) -> bool:
    """Before this node becomes SyncTarget for a volume: run before-resync-target once per
    resync (resync data queued by the source is not applied to our disk before that:
    `Disk.drain`). A handler that fails makes DRBD drop
    the connection (drbd_start_resync: "before-resync-target handler returned %d, dropping
    connection."): our side goes StandAlone, the peer sees us gone. False in that case."""
    if dec.get("tgt_ready"):
        return True
    rc = resync_target_helper(node, res, pid, vnr, "before-resync-target")
    if rc > 0:
        node.note_helper(f"# before-resync-target returned {rc}, dropping connection")
        sess["closed"] = "peer"
        conn["cstate"] = "StandAlone"
        conn["peer_role"] = "Unknown"
        conn["epoch"] = None
        for other in conn["pd"].values():
            other.update(repl="Off", pdisk="DUnknown", rs=None)
        return False
    dec["tgt_ready"] = True
    backing = res["devices"][vnr].get("backing")
    if backing:
        disk = node.disk(backing)
        ready = disk.d.setdefault("rs_ready", [])
        ready.append(dec["sid"])
        del ready[:-16]
        disk.save()
    return True


def resync_target_helper(node: Node, res: dict, pid: int, vnr: int, cmd: str) -> int:
    """Run a device helper (before-resync-target) and wait for it, as drbd_start_resync
    does on the node that becomes SyncTarget; the node lock is released meanwhile. The
    kernel passes `<resource>/<volume>`; drbdadm then sets DRBD_RESOURCE, DRBD_VOLUME,
    DRBD_MINOR and DRBD_LL_DISK from the configuration."""
    helper = node.usermode_helper()
    env = helper_env(node, res, pid, cmd)
    key = f"{helper_key(res, pid)} volume:{vnr}"
    node.save(res)
    node.note_helper(f"call helper {key} helper:{cmd}")
    # DRBD 9 passes "<resource>/<volume>", 8.4 "minor-<N>"; drbdadm understands both.
    arg = f"minor-{res['devices'][vnr]['minor']}" if res.get("v84") else f"{res['name']}/{vnr}"
    with node.unlocked():
        rc = run_helper(helper, cmd, arg, env)
    node.note_helper(f"response helper {key} helper:{cmd} status:{rc}")
    return rc


def _follow(node: Node, res: dict, pid: int, conn: dict, sess: dict, adv: dict) -> None:
    """While connected: peer role and disk from its advertisement, resync from the session."""
    conn["cstate"] = "Connected"
    conn["peer_role"] = adv["role"]
    resync_finished_as_source = False
    resync_finished_as_target = []
    for vnr, pd in conn["pd"].items():
        dec = sess["vols"].get(vnr)
        dev = res["devices"][vnr]
        pvol = adv["vols"].get(vnr)
        if dec is None or pvol is None:
            pd.update(repl="Off", pdisk="DUnknown", rs=None)
            continue
        if dec["kind"] == "nodisk":
            pd.update(repl="Established", pdisk=pvol["disk"] if pvol["disk"] != "Diskless" else "Diskless", rs=None)
            continue
        if dec["kind"] == "resync":
            me_src = dec["src"] == res["node_id"]
            disk = node.disk(dev["backing"]) if dev.get("backing") else None
            if not dec.get("done"):
                if not me_src and disk is not None and not _target_ready(node, res, pid, conn, sess, vnr, dec):
                    return
                if me_src and not dec["sent"] and disk is not None:
                    _send_resync(node, disk, dec, adv["token"], pvol["key"])
                if not me_src and disk is not None and dec["sent"] and dec["sid"] not in disk.d.get("received", []):
                    disk.drain()      # the data is queued (we hold the session lock): take it now
                    disk = node.disk(dev["backing"])
                if rs_progress(dec, node.now) >= dec["total"] and dec["sent"]:
                    dec["done"] = True
                    dec["done_at"] = node.now
                else:
                    pd.update(repl="SyncSource" if me_src else "SyncTarget",
                              pdisk="Inconsistent" if me_src else "UpToDate", rs=dec)
                    if not me_src:
                        dev["disk"] = "Inconsistent"
                    continue
            if disk is not None and pd.get("finished") != dec["sid"]:
                if me_src:
                    disk.d["oos"].pop(pid, None)
                    disk.d["bm"].pop(pid, None)
                    disk.d["peer_outdated"].pop(pid, None)
                    resync_finished_as_source = True
                else:
                    if dec["src_cur"] != disk.d["cur"] and disk.d["cur"] != UUID_JUST_CREATED:
                        disk.d["hist"] = ([disk.d["cur"]] + disk.d["hist"])[:4]
                    disk.d["cur"] = dec["src_cur"]
                    disk.d["oos"].pop(pid, None)
                    disk.d["bm"].pop(pid, None)
                    dev["disk"] = "UpToDate"
                    disk.set_state_flags("UpToDate")
                    resync_finished_as_target.append(vnr)
                disk.sync_md()
                pd["finished"] = dec["sid"]
        pd["rs"] = None
        peer_disk = pvol["disk"]
        if dec["kind"] == "resync" and dec.get("done") and peer_disk == "Inconsistent":
            peer_disk = "UpToDate"  # the peer has not looked yet; the resync is over for both
        pd.update(repl="Established", pdisk=peer_disk)
        if dev.get("backing") and dev["disk"] in ("Consistent", "Outdated") and peer_disk == "UpToDate":
            disk = node.disk(dev["backing"])
            if disk.d["cur"] == pvol.get("cur"):
                dev["disk"] = "UpToDate"
                disk.set_state_flags("UpToDate")
                disk.sync_md()
    for vnr in resync_finished_as_target:
        # drbd_resync_finished: after-resync-target on the node that was SyncTarget
        arg = f"minor-{res['devices'][vnr]['minor']}" if res.get("v84") else f"{res['name']}/{vnr}"
        spawn_helper(node, res, pid, "after-resync-target", arg=arg)
    if resync_finished_as_source and FENCING.get(conn["nopts"].get("fencing", "dont-care"), 0):
        if all(d["disk"] == "UpToDate" for d in res["devices"].values() if d.get("backing")) and \
                all(p["pdisk"] == "UpToDate" for p in conn["pd"].values()):
            spawn_helper(node, res, pid, "unfence-peer")


def _send_resync(node: Node, disk: Disk, dec: dict, peer_token: str, peer_key: str) -> None:
    if dec["blocks"] == "all":
        blocks, full = dict(disk.d["blocks"]), True
    else:
        blocks, full = {b: disk.d["blocks"].get(b) for b in dec["blocks"]}, False
    send(node, peer_token, peer_key, {"type": "resync", "sid": dec["sid"], "full": full, "blocks": blocks})
    dec["sent"] = True


def _lost(node: Node, res: dict, pid: int, conn: dict, sess, how: str) -> None:
    """The connection is gone (network failure, peer down, peer disconnect)."""
    was_primary = res["role"] == "Primary"
    had_good_peer = False
    for vnr, pd in conn["pd"].items():
        dev = res["devices"][vnr]
        if pd["pdisk"] in ("UpToDate", "Consistent"):
            had_good_peer = True
        dec = sess["vols"].get(vnr) if sess else pd.get("rs")
        if dec and dec.get("kind") == "resync" and not dec.get("done") and dev.get("backing"):
            disk = node.disk(dev["backing"])
            done = rs_progress(dec, node.now) if dec.get("sent") else 0.0
            if dec["blocks"] != "all":
                remaining = sorted(dec["blocks"])[int(done // (BLOCK // 1024)):]
                if dec["src"] == res["node_id"]:
                    disk.d["oos"][pid] = set(remaining)
                else:
                    disk.d["oos"][pid] = set(remaining)
                    dev["disk"] = "Inconsistent"
            else:
                disk.d["oos"][pid] = "all"
                if dec["tgt"] == res["node_id"]:
                    dev["disk"] = "Inconsistent"
            disk.sync_md()
        peer_outdated = sess is not None and sess.get("closed") == "disconnect" and sess.get("outdated") == pid
        if sess is not None and sess.get("closed") == "disconnect" and sess.get("outdated") == res["node_id"] \
                and dev.get("backing") and dev["disk"] in ("UpToDate", "Consistent"):
            # the peer (a Primary) left gracefully and outdated us on the way out
            dev["disk"] = "Outdated"
            disk = node.disk(dev["backing"])
            disk.set_state_flags("Outdated")
            disk.sync_md()
        pd.update(repl="Off", pdisk="Outdated" if peer_outdated else "DUnknown", rs=None)
        if peer_outdated and dev.get("backing"):
            disk = node.disk(dev["backing"])
            disk.d["peer_outdated"][pid] = True
            disk.sync_md()
    conn["epoch"] = None
    conn["peer_role"] = "Unknown"
    conn["cstate"] = "Connecting"
    conn["lost"] = {"how": how, "at": node.now}
    policy = FENCING.get(conn["nopts"].get("fencing", "dont-care"), 0)
    if was_primary and had_good_peer and policy and not all(p["pdisk"] == "Outdated" for p in conn["pd"].values()):
        if policy == 2:
            res["susp_fen"] = True
        conn["fence"] = {"id": os.urandom(4).hex(), "at": node.now}
        spawn_helper(node, res, pid, "fence-peer", fence_id=conn["fence"]["id"])


# --- usermode helpers ----------------------------------------------------------------------
def helper_env(node: Node, res: dict, pid: int, cmd: str) -> dict:
    conn = res["conns"][pid]
    env = {"HOME": "/", "TERM": "linux", "PATH": "/sbin:/usr/sbin:/bin:/usr/bin"}
    if conn["paths"]:
        local, peer = conn["paths"][0]
        env.update(DRBD_MY_ADDRESS=addr_ip(local), DRBD_MY_AF=local.split(":", 1)[0],
                   DRBD_PEER_ADDRESS=addr_ip(peer), DRBD_PEER_AF=peer.split(":", 1)[0])
    env["DRBD_PEER_NODE_ID"] = str(pid)
    env["DRBD_CSTATE"] = conn["cstate"]
    for vnr, dev in sorted(res["devices"].items()):
        env[f"DRBD_MINOR_{vnr}"] = str(dev["minor"])
        if dev.get("backing"):
            env[f"DRBD_BACKING_DEV_{vnr}"] = dev["backing"]
    if "fence" in cmd:
        mask = 1 << res["node_id"] if any(d["disk"] == "UpToDate" for d in res["devices"].values()) else 0
        for p, c in res["conns"].items():
            if all(pd["pdisk"] == "UpToDate" for pd in c["pd"].values()) and c["pd"]:
                mask |= 1 << p
        env["UP_TO_DATE_NODES"] = "0x%08X" % mask
    if res.get("v84"):
        # drbdadm finds an 8.4 module in /proc/drbd and runs drbdadm-84; here the
        # simulated module says so through drbd-utils' own override.
        env["DRBD_DRIVER_VERSION_OVERRIDE"] = "8.4.11"
    # the simulator's own locations, so that a helper's drbdsetup calls reach this node
    for key in ("XENHA_SIM_DRBD_STATE", "XENHA_SIM_DRBD_DISKS", "XENHA_SIM_DRBD_NET", "XENHA_SIM_DRBD_NODE"):
        if key in node.environ:
            env[key] = node.environ[key]
    env.setdefault("XENHA_SIM_DRBD_STATE", node.state)
    env.setdefault("XENHA_SIM_DRBD_DISKS", node.disks)
    env.setdefault("XENHA_SIM_DRBD_NET", node.net)
    env.setdefault("XENHA_SIM_DRBD_NODE", node.token)
    return env


def helper_key(res: dict, pid: int) -> str:
    return f"name:{res['name']} peer-node-id:{pid} conn-name:{res['conns'][pid]['name']}"


def spawn_helper(node: Node, res: dict, pid: int, cmd: str, fence_id: str | None = None,
                 arg: str | None = None) -> None:
    """Run the usermode helper asynchronously (the kernel's drbd_async_h thread): a
    detached process runs it and then applies its exit code under the node lock."""
    node.note_helper(f"call helper {helper_key(res, pid)} helper:{cmd}")
    env = helper_env(node, res, pid, cmd)
    payload = repr((node.state, node.disks, node.net, node.token, res["name"], res["inc"], pid, cmd, fence_id,
                    node.usermode_helper(), env, arg))
    code = child_code(f"from xenha_lab.sim.drbd import drbd_state as s; s.helper_main({payload})")
    pid_child = os.fork()
    if pid_child == 0:
        try:
            if os.fork() != 0:
                os._exit(0)
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execve(sys.executable, [sys.executable, "-IS", "-c", code], dict(os.environ))
        finally:
            os._exit(127)
    os.waitpid(pid_child, 0)


def run_helper(helper: str, cmd: str, resname: str, env: dict) -> int:
    """Run `<helper> <cmd> <resource>` and return the exit status (the kernel's (r>>8)&0xff)."""
    try:
        child = os.fork()
    except OSError:
        return 0
    if child == 0:
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.execve(helper, [helper, cmd, resname], env)
        finally:
            os._exit(127)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 0


def helper_main(args) -> None:
    state, disks, net, token, resname, inc, pid, cmd, fence_id, helper, env, arg = args
    node = Node(state, disks, net, token, environ=env)
    _makedirs(os.path.join(state, "helpers.d"))
    mark = os.path.join(state, "helpers.d", str(os.getpid()))
    with open(mark, "w") as handle:
        handle.write(f"{cmd} {resname}\n")
    try:
        rc = run_helper(helper, cmd, arg or resname, env)
    finally:
        _unlink(mark)
    with node:
        res = node.load(resname)
        key = f"name:{resname} peer-node-id:{pid} conn-name:{res['conns'][pid]['name'] if res and pid in res['conns'] else ''}"
        node.note_helper(f"response helper {key} helper:{cmd} status:{rc}")
        if res is None or res["inc"] != inc or pid not in res["conns"]:
            return
        if cmd == "fence-peer":
            apply_fence_result(node, res, pid, fence_id, rc)
            node.save(res)
            publish(node, res)


def apply_fence_result(node: Node, res: dict, pid: int, fence_id, rc: int) -> bool:
    """conn_try_outdate_peer: interpret the fence-peer exit code. True when the peer is
    now known to be outdated (or worse)."""
    conn = res["conns"][pid]
    if fence_id is not None and (conn.get("fence") or {}).get("id") != fence_id:
        return False
    conn["fence"] = None
    if conn["epoch"] is not None:
        res["susp_fen"] = False     # connection re-established: do not fence
        return False
    new = None
    if rc == 3:
        new = "Inconsistent"
    elif rc in (4, 7):
        new = "Outdated"
    elif rc == 5:
        if any(d["disk"] == "UpToDate" for d in res["devices"].values()):
            new = "Outdated"
    elif rc == 6:
        for dev in res["devices"].values():
            if dev.get("backing") and DRANK[dev["disk"]] > DRANK["Outdated"]:
                dev["disk"] = "Outdated"
                disk = node.disk(dev["backing"])
                disk.set_state_flags("Outdated")
                disk.sync_md()
    else:
        return False                # a broken handler leaves I/O frozen
    res["susp_fen"] = False
    if new:
        for vnr, pd in conn["pd"].items():
            pd["pdisk"] = new
            dev = res["devices"][vnr]
            if dev.get("backing"):
                disk = node.disk(dev["backing"])
                disk.d["peer_outdated"][pid] = True
                disk.sync_md()
    return all(DRANK[pd["pdisk"]] <= DRANK["Outdated"] for pd in conn["pd"].values())


def fence_sync(node: Node, res: dict, pid: int) -> bool:
    """Run fence-peer and wait for it (promotion path); the node lock is released meanwhile."""
    helper = node.usermode_helper()
    env = helper_env(node, res, pid, "fence-peer")
    key = helper_key(res, pid)
    node.save(res)
    node.note_helper(f"call helper {key} helper:fence-peer")
    with node.unlocked():
        rc = run_helper(helper, "fence-peer", res["name"], env)
    node.note_helper(f"response helper {key} helper:fence-peer status:{rc}")
    fresh = node.load(res["name"])
    if fresh is not None:
        res.clear()
        res.update(fresh)
    if pid not in res["conns"]:
        return False
    return apply_fence_result(node, res, pid, None, rc)


# --- roles ---------------------------------------------------------------------------------
def _has_uptodate_access(res: dict, vnr: int) -> bool:
    if res["devices"][vnr]["disk"] == "UpToDate":
        return True
    return any(c["epoch"] and c["pd"][vnr]["pdisk"] == "UpToDate" for c in res["conns"].values())


def primary(node: Node, name: str, force: bool) -> None:
    res = node.get(name)
    evaluate(node, res)
    if res["role"] == "Primary":
        return
    for conn in res["conns"].values():
        if conn["epoch"] and conn["peer_role"] == "Primary" and conn["nopts"].get("allow-two-primaries", "no") != "yes":
            raise DrbdError("state", -1, obj=name)
    forced = with_force = False
    for _try in range(4):
        need = [v for v in res["devices"] if not _has_uptodate_access(res, v)]
        if need and not with_force:
            if force:
                # --force: "Forced to consider local data as UpToDate!"
                if any(not res["devices"][v].get("backing") for v in need):
                    raise DrbdError("state", -2, obj=name)
                forced = with_force = True
                continue
            consistent = [v for v in need if res["devices"][v]["disk"] == "Consistent"]
            if consistent and len(consistent) == len(need):
                # a Consistent disk may become UpToDate once the unknown peers are fenced
                for pid, conn in list(res["conns"].items()):
                    if conn["epoch"] is None and any(conn["pd"][v]["pdisk"] == "DUnknown" for v in consistent):
                        if FENCING.get(conn["nopts"].get("fencing", "dont-care"), 0) and fence_sync(node, res, pid):
                            with_force = True
                if with_force:
                    continue
            node.save(res)
            raise DrbdError("state", -2, obj=name)
        nop = [pid for pid, c in res["conns"].items()
               if FENCING.get(c["nopts"].get("fencing", "dont-care"), 0) and c["epoch"] is None
               and any(DRANK[pd["pdisk"]] > DRANK["Outdated"] for pd in c["pd"].values())
               and any(d.get("backing") for d in res["devices"].values())]
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
    for vnr, dev in res["devices"].items():
        if not dev.get("backing"):
            continue
        disk = node.disk(dev["backing"])
        if with_force and dev["disk"] != "UpToDate" and not _has_uptodate_access(res, vnr) or \
                forced and dev["disk"] != "UpToDate":
            if forced:
                # drbd_uuid_new_current: a new data generation starts here
                if disk.d["cur"] != UUID_JUST_CREATED:
                    disk.d["hist"] = ([disk.d["cur"]] + disk.d["hist"])[:4]
                disk.d["cur"] = new_uuid()
                for pid, conn in res["conns"].items():
                    if conn["epoch"] is None:
                        disk.d["oos"][pid] = "all"
            dev["disk"] = "UpToDate"
            disk.set_state_flags("UpToDate")
        disk.d["flags"] |= MDF_PRIMARY_IND
        disk.sync_md()
    res["role"] = "Primary"
    node.save(res)
    publish(node, res)
    if forced:
        _reconsider_resync(node, res)


def _reconsider_resync(node: Node, res: dict) -> None:
    """After a forced promotion while connected, start a full sync toward the peers
    (drbd_set_role sets CONSIDER_RESYNC and sends new UUIDs)."""
    for pid, conn in res["conns"].items():
        if conn["epoch"] is None or not conn["paths"]:
            continue
        local, peer = conn["paths"][0]
        sfile = sess_file(node, local, peer)
        lock = _flock(sfile + ".lock")
        try:
            sess = _read(sfile)
            adv = read_advert(node, peer, res["name"])
            if not sess or sess["epoch"] != conn["epoch"] or adv is None:
                continue
            for vnr, dev in res["devices"].items():
                pvol = adv["vols"].get(vnr)
                if not dev.get("backing") or not pvol or not pvol.get("key"):
                    continue
                if pvol["disk"] in ("Inconsistent", "Outdated", "Consistent") and dev["disk"] == "UpToDate":
                    x = side_info(node, res, vnr)
                    y = dict(pvol, nid=pid, token=adv["token"])
                    sess["vols"][vnr] = _resync(x, y, "all", node.rate_kib(res, vnr), node.now)
                    conn["pd"][vnr]["finished"] = None
            _write(sfile, sess)
        finally:
            os.close(lock)
    evaluate(node, res)


def secondary(node: Node, name: str) -> None:
    res = node.get(name)
    evaluate(node, res)
    if res["role"] == "Secondary":
        return
    if res.get("openers"):
        raise DrbdError("state", -12, obj=name)
    res["role"] = "Secondary"
    for dev in res["devices"].values():
        if dev.get("backing"):
            disk = node.disk(dev["backing"])
            disk.d["flags"] &= ~MDF_PRIMARY_IND
            disk.sync_md()
    node.save(res)
    publish(node, res)


# --- connect / disconnect / down --------------------------------------------------------------
def connect(node: Node, name: str, pid: int, discard: bool = False) -> None:
    res, conn = _resource_and_connection(node, name, pid)
    if conn["cstate"] != "StandAlone":
        raise DrbdError("fail", 125, obj=name)
    if discard and res["role"] == "Primary":
        raise DrbdError("fail", 123, text="--discard-my-data not allowed when primary.", obj=name)
    conn["cstate"] = "Connecting"
    conn["discard"] = discard
    conn["sb"] = None
    node.save(res)
    evaluate(node, res)


def disconnect(node: Node, name: str, pid: int, force: bool = False) -> None:
    res, conn = _resource_and_connection(node, name, pid)
    evaluate(node, res)
    if conn["cstate"] == "StandAlone":
        return
    _teardown(node, res, pid, conn)
    node.save(res)
    publish(node, res)


def _teardown(node: Node, res: dict, pid: int, conn: dict) -> None:
    """A graceful disconnect: the session is closed for both sides. A Secondary that
    leaves a Primary peer outdates itself, and the Primary learns that."""
    outdated = None
    if conn["epoch"] is not None and conn["paths"]:
        local, peer = conn["paths"][0]
        sfile = sess_file(node, local, peer)
        lock = _flock(sfile + ".lock")
        try:
            sess = _read(sfile)
            if sess and sess["epoch"] == conn["epoch"] and not sess["closed"]:
                policy = FENCING.get(conn["nopts"].get("fencing", "dont-care"), 0)
                if policy and res["role"] == "Secondary" and conn["peer_role"] == "Primary":
                    outdated = res["node_id"]
                    for dev in res["devices"].values():
                        if dev.get("backing") and dev["disk"] == "UpToDate":
                            dev["disk"] = "Outdated"
                            disk = node.disk(dev["backing"])
                            disk.set_state_flags("Outdated")
                            disk.sync_md()
                elif policy and res["role"] == "Primary" and conn["peer_role"] == "Secondary":
                    outdated = pid
                sess["closed"] = "disconnect"
                sess["outdated"] = outdated
                _write(sfile, sess)
        finally:
            os.close(lock)
        was_primary = res["role"]
        _lost(node, res, pid, conn, sess if sess and sess["epoch"] == conn["epoch"] else None, "TearDown")
        if outdated == pid:
            for pd in conn["pd"].values():
                pd["pdisk"] = "Outdated"
        res["role"] = was_primary
        if conn.get("fence") and outdated == pid:
            conn["fence"] = None
            res["susp_fen"] = False
    conn["epoch"] = None
    conn["cstate"] = "StandAlone"
    conn["peer_role"] = "Unknown"
    for pd in conn["pd"].values():
        if pd["pdisk"] != "Outdated":
            pd["pdisk"] = "DUnknown"
        pd.update(repl="Off", rs=None)


def del_peer(node: Node, name: str, pid: int) -> None:
    res, conn = _resource_and_connection(node, name, pid)
    if conn["cstate"] != "StandAlone":
        _teardown(node, res, pid, conn)
    withdraw(node, res, {p[0] for p in conn["paths"]})
    del res["conns"][pid]
    node.save(res)
    publish(node, res)


def down(node: Node, name: str) -> None:
    res = node.load(name)
    if res is None:
        return  # drbdsetup down of an unknown resource is a no-op (missing_ok)
    evaluate(node, res)
    if res["role"] == "Primary" and res.get("openers"):
        raise DrbdError("state", -12, obj=name)
    for pid, conn in res["conns"].items():
        if conn["cstate"] != "StandAlone":
            _teardown(node, res, pid, conn)
    res["role"] = "Secondary"
    for vnr, dev in res["devices"].items():
        if dev.get("backing"):
            _release_disk(node, res, vnr)
    withdraw(node, res)
    _unlink(node.res_path(name))


def del_minor(node: Node, minor: int) -> None:
    res, vnr = node.by_minor(minor)
    if res is None:
        raise DrbdError("fail", 127, obj=str(minor))
    if res["devices"][vnr].get("backing"):
        raise DrbdError("fail", 160, obj=str(minor))
    del res["devices"][vnr]
    for conn in res["conns"].values():
        conn["pd"].pop(vnr, None)
    node.save(res)


def del_resource(node: Node, name: str) -> None:
    res = node.get(name)
    if res["devices"] or res["conns"]:
        raise DrbdError("fail", 159, obj=name)
    _unlink(node.res_path(name))


# --- other state changes --------------------------------------------------------------------
def outdate(node: Node, minor: int) -> None:
    res, vnr = node.by_minor(minor)
    if res is None:
        raise DrbdError("fail", 127, obj=str(minor))
    evaluate(node, res)
    dev = res["devices"][vnr]
    if not dev.get("backing"):
        raise DrbdError("state", -11, obj=str(minor))
    if any(c["epoch"] for c in res["conns"].values()):
        raise DrbdError("state", -6, obj=str(minor))
    if res["role"] == "Primary":
        raise DrbdError("state", -2, obj=str(minor))
    if DRANK[dev["disk"]] < DRANK["Outdated"]:
        raise DrbdError("state", -16, obj=str(minor))
    dev["disk"] = "Outdated"
    disk = node.disk(dev["backing"])
    disk.set_state_flags("Outdated")
    disk.sync_md()
    node.save(res)
    publish(node, res)


def invalidate(node: Node, minor: int, remote_pid: int | None = None) -> None:
    res, vnr = node.by_minor(minor)
    if res is None:
        raise DrbdError("fail", 127, obj=str(minor))
    evaluate(node, res)
    dev = res["devices"][vnr]
    if not dev.get("backing"):
        raise DrbdError("state", -4 if remote_pid is None else -11, obj=str(minor))
    conns = [(p, c) for p, c in res["conns"].items() if c["epoch"]]
    if remote_pid is not None:
        conns = [(p, c) for p, c in conns if p == remote_pid]
    if not conns:
        if remote_pid is None and res["role"] == "Secondary":
            dev["disk"] = "Inconsistent"
            disk = node.disk(dev["backing"])
            disk.set_state_flags("Inconsistent")
            disk.sync_md()
            node.save(res)
            publish(node, res)
            return
        raise DrbdError("state", -15, obj=str(minor))
    pid, conn = conns[0]
    if conn["pd"][vnr].get("rs"):
        raise DrbdError("state", -8, obj=str(minor))
    local, peer = conn["paths"][0]
    sfile = sess_file(node, local, peer)
    lock = _flock(sfile + ".lock")
    try:
        sess = _read(sfile)
        adv = read_advert(node, peer, res["name"])
        x = side_info(node, res, vnr)
        y = dict(adv["vols"][vnr], nid=pid, token=adv["token"])
        if remote_pid is None:
            if y["disk"] != "UpToDate":
                raise DrbdError("state", -5, obj=str(minor))
            sess["vols"][vnr] = _resync(y, x, "all", node.rate_kib(res, vnr), node.now)
        else:
            if x["disk"] != "UpToDate":
                raise DrbdError("state", -2, obj=str(minor))
            sess["vols"][vnr] = _resync(x, y, "all", node.rate_kib(res, vnr), node.now)
        conn["pd"][vnr]["finished"] = None
        _write(sfile, sess)
    finally:
        os.close(lock)
    evaluate(node, res)


def suspend_io(node: Node, minor: int, resume: bool) -> None:
    res, _vnr = node.by_minor(minor)
    if res is None:
        raise DrbdError("fail", 127, obj=str(minor))
    if resume:
        res["susp_user"] = False
        res["susp_fen"] = False
        for conn in res["conns"].values():
            conn["fence"] = None
    else:
        res["susp_user"] = True
    node.save(res)
    publish(node, res)


# --- device users: the data path -------------------------------------------------------------
class IOError_(Exception):
    """A write or read a device user could not do (errno-like text)."""


def suspended(res: dict) -> bool:
    return bool(res.get("susp_user") or res.get("susp_fen"))


def write_block(node: Node, name: str, vnr: int, blk: int, data: bytes) -> str:
    """A write by a user of /dev/drbdN on this node. Returns 'ack' once it is durable
    where protocol C requires (local disk + every connected peer's disk), 'frozen' when
    I/O is suspended (nothing was written; retry later), raises IOError_ otherwise."""
    res = node.get(name)
    evaluate(node, res)
    if res["role"] != "Primary":
        raise IOError_("EROFS: not Primary (auto-promote is not simulated)")
    if suspended(res):
        return "frozen"
    dev = res["devices"][vnr]
    local = node.disk(dev["backing"]) if dev.get("backing") else None
    if local is not None and dev["disk"] not in ("UpToDate", "Inconsistent", "Consistent"):
        local = None
    if local is None and not any(c["epoch"] and c["pd"][vnr]["pdisk"] == "UpToDate" for c in res["conns"].values()):
        raise IOError_("EIO: no access to UpToDate data")
    if dev.get("size_kib") and blk * (BLOCK // 1024) >= dev["size_kib"]:
        raise IOError_("ENOSPC: beyond the end of the device")
    # replicate to connected peers first (under the session lock, so that a concurrent
    # disconnect either sees this write queued or we see the session closed)
    sent_to = set()
    for pid, conn in sorted(res["conns"].items()):
        if conn["epoch"] is None or not conn["paths"]:
            continue
        pd = conn["pd"][vnr]
        local_addr, peer_addr = conn["paths"][0]
        sfile = sess_file(node, local_addr, peer_addr)
        lock = _flock(sfile + ".lock")
        try:
            sess = _read(sfile)
            adv = read_advert(node, peer_addr, name)
            alive = (sess and sess["epoch"] == conn["epoch"] and not sess["closed"]
                     and not _cut(node, addr_ip(local_addr), addr_ip(peer_addr)) and adv is not None)
            if not alive:
                continue
            pvol = adv["vols"].get(vnr) or {}
            if pd["pdisk"] in ("Diskless", "DUnknown") or not pvol.get("key"):
                continue
            dec = sess["vols"].get(vnr) or {}
            if dec.get("kind") == "resync" and not dec.get("done") and dec["tgt"] == res["node_id"] \
                    and not dec.get("sent"):
                return "frozen"   # the resync data has not arrived yet: wait for it
            send(node, adv["token"], pvol["key"], {"type": "write", "blk": blk, "data": data})
            sent_to.add(pid)
        finally:
            os.close(lock)
    if local is not None:
        _local_write(res, vnr, local, blk, data, sent_to)
    dev["written"] = dev.get("written", 0) + len(data) // 1024
    node.save(res)
    publish(node, res)
    return "ack"


def _local_write(res: dict, vnr: int, disk: Disk, blk: int, data: bytes, sent_to: set) -> None:
    missing = [pid for pid, c in res["conns"].items() if pid not in sent_to]
    if missing:
        # writes without a peer: the peer gets a bitmap bit, and the first such write
        # after losing the peer starts a new data generation (new current UUID)
        rotate = False
        for pid in missing:
            if not disk.d["bm"].get(pid):
                disk.d["bm"][pid] = disk.d["cur"]
                rotate = True
            disk.oos_add(pid, blk)
        if rotate and res["devices"][vnr]["disk"] == "UpToDate":
            disk.d["hist"] = ([disk.d["cur"]] + disk.d["hist"])[:4]
            disk.d["cur"] = new_uuid()
    disk._store(blk, data)
    disk.d["written_kib"] = disk.d.get("written_kib", 0) + len(data) // 1024
    disk.sync_md()


def read_block(node: Node, name: str, vnr: int, blk: int):
    res = node.get(name)
    evaluate(node, res)
    dev = res["devices"][vnr]
    if dev.get("backing") and dev["disk"] == "UpToDate":
        return node.disk(dev["backing"]).d["blocks"].get(blk)
    raise IOError_("EIO: local disk not UpToDate")


def disk_blocks(node: Node, backing: str) -> dict:
    disk = node.disk(backing)
    if not disk.exists():
        return {}
    disk.drain()
    return dict(disk.d["blocks"])


# --- views used by the front ends ------------------------------------------------------------
def promotion_score(res: dict) -> tuple[bool, int]:
    """may_promote / promotion_score as DRBD 9.1+ report them (samples/drbd9_events2.txt):
    10000 base for local UpToDate data (1 otherwise, when a peer has it), +100 per
    UpToDate volume... approximated as 10101 for UpToDate, 10001 for Inconsistent with
    an UpToDate peer, +1 per connected peer; may_promote when Secondary and promotable."""
    if not res["devices"]:
        return False, 0
    score = 0
    ok = True
    for vnr, dev in res["devices"].items():
        if dev["disk"] == "UpToDate":
            score = max(score, 10101)
        elif _has_uptodate_access(res, vnr):
            score = max(score, 10001)
        else:
            ok = False
    if not ok:
        return False, 0
    score += sum(1 for c in res["conns"].values() if c["epoch"])
    if any(c["epoch"] and c["peer_role"] == "Primary" and c["nopts"].get("allow-two-primaries", "no") != "yes"
           for c in res["conns"].values()):
        return False, score
    return res["role"] == "Secondary", score


def susp_str(res: dict) -> str:
    parts = []
    if res.get("susp_user"):
        parts.append("user")
    if res.get("susp_fen"):
        parts.append("fencing")
    return ",".join(parts) or "no"


def conn_state(conn: dict) -> str:
    return conn["cstate"]


def rs_stats(pd: dict, dev: dict, now: float) -> dict | None:
    rs = pd.get("rs")
    if not rs:
        return None
    done = rs_progress(rs, now)
    if not rs.get("sent"):
        done = min(done, rs["total"] * 0.99)
    total = max(rs["total"], 1)
    left = max(0.0, rs["total"] - done)
    return {"total": rs["total"], "done_kib": done, "left_kib": left, "percent": 100.0 * done / total,
            "eta": left / rs["rate"] if rs["rate"] else 0, "rate": rs["rate"], "start": rs["start"]}


def out_of_sync_kib(node: Node, res: dict, pid: int, vnr: int) -> int:
    pd = res["conns"][pid]["pd"][vnr]
    dev = res["devices"][vnr]
    stats = rs_stats(pd, dev, node.now)
    if stats:
        return int(stats["left_kib"])
    if not dev.get("backing"):
        return 0
    disk = node.disk(dev["backing"])
    if not disk.exists():
        return 0
    oos = disk.d["oos"].get(pid)
    if oos == "all":
        return dev.get("size_kib", 0)
    return len(oos or ()) * (BLOCK // 1024)


def withdraw_node(net: str, token: str | None = None, ips=None) -> None:
    """Take a powered-off node off the network: drop its advertisements (by node token or
    by its addresses). The lab's power switch calls this when it cuts a node's power."""
    base = os.path.join(net, "ep")
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if name.endswith(".lock") or ".tmp" in name:
            continue
        path = os.path.join(base, name)
        ip = name.rsplit(":", 1)[0]
        lock = _flock(path + ".lock")
        try:
            data = _read(path) or {}
            keep = {r: a for r, a in data.items()
                    if not ((token and a.get("token") == token) or (ips and ip in ips))}
            if keep != data:
                if keep:
                    _write(path, keep)
                else:
                    _unlink(path)
        finally:
            os.close(lock)
