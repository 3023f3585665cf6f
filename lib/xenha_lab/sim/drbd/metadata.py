"""What a backing device holds, as the simulated DRBD kernel keeps it.

The kernel's view of a disk is persistent, per node, under ``XENHA_SIM_DRBD_DISKS``
(default /var/lib/xenha-sim/drbd-disks): one `Disk` record per backing device, named
after its path (``/dev/loop3`` -> ``!dev!loop3``): generation identifiers (current,
bitmap UUID per peer, history), the meta-data flags (consistent, was-up-to-date,
primary, crashed-primary), which peers are known outdated, the out-of-sync blocks per
peer (a set of 4 KiB block numbers, or "all" for a full sync) and the data blocks
written through the device. It is a sidecar rather than the device itself, so that
tests can inspect data blocks; the device's real DRBD meta-data (written by real
drbdmeta) is still read at attach (no magic number: the attach fails like the kernel's,
``(119) No valid meta-data signature found``) and the current UUID and flags are
written back into it (`Disk.sync_md`), so that ``drbdadm dstate``/``get-gi`` on a down
resource (which run real drbdmeta) see what the simulated kernel left, and a new
``drbdadm create-md`` is noticed (the record then starts afresh).
"""

from __future__ import annotations

import os

from xenha_lab.sim.drbd import store

BLOCK = 4096                       # bitmap granularity and the unit of simulated writes
UUID_JUST_CREATED = 4

MD_MAGIC_09 = 0x8374026D
MD_MAGIC_08 = (0x83740267 + 4, 0x83740267 + 5)
# meta-data flags (drbd_meta_data.h)
MDF_CONSISTENT, MDF_PRIMARY_IND, MDF_WAS_UP_TO_DATE, MDF_CRASHED_PRIMARY, MDF_AL_CLEAN = 1, 2, 16, 64, 128


def disk_key(path: str) -> str:
    return path.replace("/", "!")


def new_uuid() -> int:
    # generation identifiers: random 64 bit, lowest bit (the "primary" bit) clear
    return int.from_bytes(os.urandom(8), "big") & ~1 or 8


# --- the real meta-data block -------------------------------------------------------
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


# --- the record --------------------------------------------------------------------
class Disk:
    """The persistent record of one backing device (see the module docstring). `present`
    is False until the device was first attached (or after its record was lost)."""

    FIELDS = ("md_uuid", "cur", "hist", "bm", "flags", "oos", "blocks", "peer_outdated", "written_kib",
              "rs_ready", "received")
    __slots__ = ("path", "key", "file", "present") + FIELDS

    def __init__(self, disks_dir: str, path: str):
        self.path = path
        self.key = disk_key(path)
        self.file = os.path.join(disks_dir, self.key)
        data = store.read(self.file)
        self.present = data is not None
        self._fill(data or {})

    def _fill(self, data: dict) -> None:
        self.md_uuid = data.get("md_uuid", 0)
        self.cur = data.get("cur", UUID_JUST_CREATED)     # current generation identifier
        self.hist = data.get("hist", [])                   # history, newest first (at most 4)
        self.bm = data.get("bm", {})                       # peer node-id -> bitmap UUID
        self.flags = data.get("flags", 0)                  # MDF_* but MDF_AL_CLEAN
        self.oos = data.get("oos", {})                     # peer node-id -> set of blocks | "all"
        self.blocks = data.get("blocks", {})               # block number -> 4 KiB of data
        self.peer_outdated = data.get("peer_outdated", {})  # peer node-id -> True
        self.written_kib = data.get("written_kib", 0)
        self.rs_ready = data.get("rs_ready", [])           # resyncs before-resync-target allowed (ids)
        self.received = data.get("received", [])           # resyncs whose data was applied (ids)

    def exists(self) -> bool:
        return self.present

    def fresh(self, md_uuid: int) -> None:
        """A new record for meta-data just created by drbdmeta."""
        self._fill({"md_uuid": md_uuid})
        self.present = True

    def save(self) -> None:
        store.makedirs(os.path.dirname(self.file))
        store.write(self.file, {name: getattr(self, name) for name in self.FIELDS})

    def md_flags(self) -> int:
        return self.flags | MDF_AL_CLEAN

    def sync_md(self) -> None:
        """Persist the record and mirror current UUID + flags into the real superblock."""
        sb = md_superblock(self.path)
        if sb is not None:
            md_writeback(self.path, sb[0], self.cur, self.md_flags())
            self.md_uuid = self.cur
        self.save()

    def consistent_state(self) -> str:
        if not self.flags & MDF_CONSISTENT:
            return "Inconsistent"
        if not self.flags & MDF_WAS_UP_TO_DATE:
            return "Outdated"
        return "UpToDate"

    def set_state_flags(self, disk: str) -> None:
        flags = self.flags & ~(MDF_CONSISTENT | MDF_WAS_UP_TO_DATE)
        if disk == "UpToDate":
            flags |= MDF_CONSISTENT | MDF_WAS_UP_TO_DATE
        elif disk in ("Consistent",):
            flags |= MDF_CONSISTENT | (self.flags & MDF_WAS_UP_TO_DATE)
        elif disk == "Outdated":
            flags |= MDF_CONSISTENT
        self.flags = flags

    def push_history(self) -> None:
        """The current generation identifier goes to the history (before a new one)."""
        self.hist = ([self.cur] + self.hist)[:4]

    def oos_add(self, peer: int, blk: int) -> None:
        current = self.oos.get(peer, set())
        if current == "all":
            return
        current = set(current)
        current.add(blk)
        self.oos[peer] = current

    def store(self, blk: int, data) -> None:
        """A block's new content (None: it reads zeros again)."""
        if data is None:
            self.blocks.pop(blk, None)
        else:
            self.blocks[blk] = data
