"""The records of the simulated DRBD kernel, typed.

What a node's kernel keeps in RAM, per resource (`Resource` with its `Device`s, its
`Connection`s and their `PeerDevice`s), and what the nodes share over the simulated
network: what a node advertises on an endpoint (`Advert`, with one `VolumeView` per
volume and one `PeerWish` per connection), and the record of one connection both ends
agree on (`Session`, with one handshake `Decision` per volume). The backing device's
own record is `metadata.Disk`.

Records are plain classes with __slots__ (the drbdsetup query path imports no
`dataclasses`/`typing`); they are stored as plain dicts (`dump`/`load`), which is what
`store` writes with marshal.
"""

from __future__ import annotations

# disk states in the order of enum drbd_disk_state
DISK_ORDER = ["Diskless", "Attaching", "Detaching", "Failed", "Negotiating", "Inconsistent",
              "Outdated", "DUnknown", "Consistent", "UpToDate"]
DRANK = {name: i for i, name in enumerate(DISK_ORDER)}

FENCING = {"dont-care": 0, "resource-only": 1, "resource-and-stonith": 2}


class Record:
    """Fields are the __slots__; NESTED says which hold records: {field: (kind, class)}
    with kind "one" (a record or None) or "map" (a dict of records)."""

    __slots__ = ()
    NESTED: dict = {}

    def dump(self) -> dict:
        return {name: _plain(getattr(self, name)) for name in self.__slots__}

    def take(self, other) -> None:
        """Become `other` (for holders of a reference to this record)."""
        for name in self.__slots__:
            setattr(self, name, getattr(other, name))

    @classmethod
    def load(cls, data: dict):
        record = cls()
        nested = cls.NESTED
        for name in cls.__slots__:
            if name not in data:
                continue        # a field added since the record was written keeps its default
            value = data[name]
            if name in nested and value is not None:
                kind, inner = nested[name]
                value = {k: inner.load(v) for k, v in value.items()} if kind == "map" else inner.load(value)
            setattr(record, name, value)
        return record


def _plain(value):
    if isinstance(value, Record):
        return value.dump()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- a node's RAM --------------------------------------------------------------------
class Device(Record):
    """One volume of a resource on this node (a minor, maybe attached to a disk)."""

    __slots__ = ("minor", "disk", "backing", "meta", "idx", "dopts", "read", "written", "size_kib")

    def __init__(self, minor: int = 0, disk: str = "Diskless", backing: str | None = None,
                 meta: str | None = None, idx: str | None = None, dopts: dict | None = None,
                 read: int = 0, written: int = 0, size_kib: int = 0):
        self.minor, self.disk, self.backing, self.meta, self.idx = minor, disk, backing, meta, idx
        self.dopts = {} if dopts is None else dopts
        self.read, self.written, self.size_kib = read, written, size_kib


class Decision(Record):
    """What the handshake decided for one volume of a connection (both ends read the
    same): kind "none" (in sync), "nodisk", "splitbrain", "unrelated", "resync", or
    "skip" (new-current-uuid --clear-bitmap on node `src`: the others adopt `src_cur`).
    A resync goes from node-id `src` to `tgt` over `blocks` (a set of 4 KiB block
    numbers, or "all"), `total` KiB at `rate` KiB/s from `start`; `sent` once the
    source queued the data, `tgt_ready` once the target ran before-resync-target,
    `done` (at `done_at`) once it is over; `sid` names it, `src_cur` is the source's
    current generation identifier that the target adopts."""

    __slots__ = ("kind", "both_inconsistent", "src", "tgt", "blocks", "total", "start", "rate", "sent", "sid",
                 "src_cur", "done", "done_at", "tgt_ready")

    def __init__(self, kind: str = "none", both_inconsistent: bool = False, src: int = -1, tgt: int = -1,
                 blocks=(), total: float = 0, start: float = 0.0, rate: float = 0.0, sent: bool = False,
                 sid: str = "", src_cur: int = 0, done: bool = False, done_at: float | None = None,
                 tgt_ready: bool = False):
        self.kind, self.both_inconsistent = kind, both_inconsistent
        self.src, self.tgt, self.blocks, self.total = src, tgt, blocks, total
        self.start, self.rate, self.sent, self.sid, self.src_cur = start, rate, sent, sid, src_cur
        self.done, self.done_at, self.tgt_ready = done, done_at, tgt_ready

    @property
    def resyncing(self) -> bool:
        """A resync that has not ended yet."""
        return self.kind == "resync" and not self.done


class PeerDevice(Record):
    """One volume as seen through one connection: replication state, the peer's disk
    state, the resync in progress (`rs`), the last resync whose end was applied here."""

    __slots__ = ("repl", "pdisk", "rs", "finished", "received", "sent")
    NESTED = {"rs": ("one", Decision)}

    def __init__(self, repl: str = "Off", pdisk: str = "DUnknown", rs: Decision | None = None,
                 finished: str | None = None, received: int = 0, sent: int = 0):
        self.repl, self.pdisk, self.rs, self.finished = repl, pdisk, rs, finished
        self.received, self.sent = received, sent

    def off(self, pdisk: str = "DUnknown") -> None:
        """No replication: the peer's disk is unknown (or what we last knew of it)."""
        self.repl, self.pdisk, self.rs = "Off", pdisk, None


class Connection(Record):
    """This node's connection to one peer node-id. `epoch` is the session it belongs
    to while connected (None otherwise); `fence_id` names a fence-peer run in flight;
    `sb_seen`/`sb` the session that ended in split brain (or unrelated data) and why;
    `lost` (how, when) the last loss of the connection."""

    __slots__ = ("name", "nopts", "paths", "cstate", "peer_role", "epoch", "pd", "fence_id", "discard", "lost",
                 "sb_seen", "sb")
    NESTED = {"pd": ("map", PeerDevice)}

    def __init__(self, name: str = "", nopts: dict | None = None, paths: list | None = None,
                 cstate: str = "StandAlone", peer_role: str = "Unknown", epoch: str | None = None,
                 pd: dict | None = None, fence_id: str | None = None, discard: bool = False, lost=None,
                 sb_seen: str | None = None, sb: str | None = None):
        self.name = name
        self.nopts = {} if nopts is None else nopts
        self.paths = [] if paths is None else paths
        self.cstate, self.peer_role, self.epoch = cstate, peer_role, epoch
        self.pd = {} if pd is None else pd
        self.fence_id, self.discard, self.lost, self.sb_seen, self.sb = fence_id, discard, lost, sb_seen, sb

    @property
    def fencing(self) -> int:
        """The fencing policy: 0 dont-care, 1 resource-only, 2 resource-and-stonith."""
        return FENCING.get(self.nopts.get("fencing", "dont-care"), 0)

    @property
    def two_primaries(self) -> bool:
        return self.nopts.get("allow-two-primaries", "no") == "yes"

    def drop(self) -> None:
        """Back to StandAlone: no session, no peer, no replication."""
        self.cstate, self.peer_role, self.epoch = "StandAlone", "Unknown", None
        for pd in self.pd.values():
            pd.off()


class Resource(Record):
    """A resource configured on this node (`inc` changes every time it is created, so
    that a peer can tell a new incarnation from the one it knew)."""

    __slots__ = ("name", "node_id", "inc", "role", "susp_user", "susp_fen", "opts", "devices", "conns",
                 "openers", "created", "v84")
    NESTED = {"devices": ("map", Device), "conns": ("map", Connection)}

    def __init__(self, name: str = "", node_id: int = -1, inc: str = "", role: str = "Secondary",
                 susp_user: bool = False, susp_fen: bool = False, opts: dict | None = None,
                 devices: dict | None = None, conns: dict | None = None, openers: int = 0,
                 created: float = 0.0, v84: bool = False):
        self.name, self.node_id, self.inc, self.role = name, node_id, inc, role
        self.susp_user, self.susp_fen = susp_user, susp_fen
        self.opts = {} if opts is None else opts
        self.devices = {} if devices is None else devices
        self.conns = {} if conns is None else conns
        self.openers, self.created, self.v84 = openers, created, v84

    @property
    def suspended(self) -> bool:
        return bool(self.susp_user or self.susp_fen)

    def suspended_text(self) -> str:
        """drbdsetup's `suspended:` value."""
        parts = [name for name, on in (("user", self.susp_user), ("fencing", self.susp_fen)) if on]
        return ",".join(parts) or "no"

    def has_uptodate_access(self, vnr: int) -> bool:
        """UpToDate data for volume `vnr`: on the local disk or through a connected peer."""
        if self.devices[vnr].disk == "UpToDate":
            return True
        return any(c.epoch and c.pd[vnr].pdisk == "UpToDate" for c in self.conns.values())

    def promotion_score(self) -> tuple[bool, int]:
        """may_promote / promotion_score as DRBD 9.1+ report them (samples/drbd9_events2.txt):
        10000 base for local UpToDate data (1 otherwise, when a peer has it), +100 per
        UpToDate volume... approximated as 10101 for UpToDate, 10001 for Inconsistent with
        an UpToDate peer, +1 per connected peer; may_promote when Secondary and promotable."""
        if not self.devices:
            return False, 0
        score = 0
        for vnr, dev in self.devices.items():
            if dev.disk == "UpToDate":
                score = max(score, 10101)
            elif self.has_uptodate_access(vnr):
                score = max(score, 10001)
            else:
                return False, 0
        score += sum(1 for c in self.conns.values() if c.epoch)
        if any(c.epoch and c.peer_role == "Primary" and not c.two_primaries for c in self.conns.values()):
            return False, score
        return self.role == "Secondary", score

    def helper_arg(self, vnr: int) -> str:
        """How the kernel names a volume to a device helper: DRBD 9 "<resource>/<volume>",
        8.4 "minor-<N>" (drbdadm understands both)."""
        return f"minor-{self.devices[vnr].minor}" if self.v84 else f"{self.name}/{vnr}"


# --- what nodes share ----------------------------------------------------------------
class VolumeView(Record):
    """One volume as a handshake sees it: node-id `nid` (on node `token`), disk state,
    and, with a disk (`key` set: the disk's record name), its generation identifiers
    (current, bitmap UUID per peer, history), out-of-sync blocks per peer and size."""

    __slots__ = ("nid", "token", "disk", "key", "cur", "hist", "bm", "oos", "size")

    def __init__(self, nid: int = -1, token: str = "", disk: str = "Diskless", key: str | None = None,
                 cur: int = 0, hist: list | None = None, bm: dict | None = None, oos: dict | None = None,
                 size: int = 0):
        self.nid, self.token, self.disk, self.key, self.cur = nid, token, disk, key, cur
        self.hist = [] if hist is None else hist
        self.bm = {} if bm is None else bm
        self.oos = {} if oos is None else oos
        self.size = size

    def fingerprint(self, peer: int) -> tuple:
        """What a handshake with node-id `peer` decides from: disk state, current and
        bitmap generation identifiers, the blocks out of sync for that peer."""
        oos = self.oos.get(peer) or ()
        return (self.disk, self.cur, self.bm.get(peer, 0), oos if oos == "all" else tuple(sorted(oos)))

    def seen_as(self, nid: int, token: str) -> VolumeView:
        """This view under the node-id and token the other end knows the node by."""
        view = VolumeView.load(self.dump())
        view.nid, view.token = nid, token
        return view


class PeerWish(Record):
    """What an advertising node wants of its connection to one peer node-id."""

    __slots__ = ("want", "peer_addr", "two_pri", "discard")

    def __init__(self, want: bool = False, peer_addr: str = "", two_pri: bool = False, discard: bool = False):
        self.want, self.peer_addr, self.two_pri, self.discard = want, peer_addr, two_pri, discard


class Advert(Record):
    """What a node advertises for one resource on one of its endpoints."""

    __slots__ = ("inc", "token", "node_id", "role", "susp", "vols", "conns")
    NESTED = {"vols": ("map", VolumeView), "conns": ("map", PeerWish)}

    def __init__(self, inc: str = "", token: str = "", node_id: int = -1, role: str = "Secondary",
                 susp: bool = False, vols: dict | None = None, conns: dict | None = None):
        self.inc, self.token, self.node_id, self.role, self.susp = inc, token, node_id, role, susp
        self.vols = {} if vols is None else vols
        self.conns = {} if conns is None else conns


class Session(Record):
    """The record of one connection that both ends share (`epoch` names it; `incs` the
    incarnations of the two resources it joins). `closed` says how it ended: None
    (open), "network", "peer", "disconnect" (with `outdated`: the node-id a graceful
    disconnect outdated), or an abort found in the handshake ("splitbrain",
    "unrelated", "two-primaries", also in `abort`). `basis` holds, per node-id and
    volume, the fingerprint of the view each decision was made from (the node that
    joins later checks its own against it: it may have written meanwhile)."""

    __slots__ = ("epoch", "incs", "closed", "vols", "abort", "created", "outdated", "basis")
    NESTED = {"vols": ("map", Decision)}

    def __init__(self, epoch: str = "", incs: dict | None = None, closed: str | None = None,
                 vols: dict | None = None, abort: str | None = None, created: float = 0.0,
                 outdated: int | None = None, basis: dict | None = None):
        self.epoch = epoch
        self.incs = {} if incs is None else incs
        self.closed = closed
        self.vols = {} if vols is None else vols
        self.abort, self.created, self.outdated = abort, created, outdated
        self.basis = {} if basis is None else basis

    def is_open(self, epoch) -> bool:
        """Still the open session of a connection in `epoch`."""
        return self.epoch == epoch and not self.closed
