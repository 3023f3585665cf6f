"""The device-mapper layer of a simulated node: mapped devices, their tables and status.

This machine has no device-mapper, so a mapped device is a real block device of
another kind: a loop device. A `linear` target is a loop device over a range of its
PV; a `snapshot` target is a loop device over a file holding the snapshot's data
(see `xenha_lab.sim.lvm.snapshot`). Each mapped device has a record in the node's
state (`xenha_lab.sim.lvm.state`), a block node /dev/mapper/<name> and, for an LV,
the link /dev/<vg>/<lv>. LVM activation (`xenha_lab.sim.lvm.activation`) decides what
to map and uses this layer; this layer never imports LVM, as the kernel's
device-mapper knows nothing of volume groups.

`dmsetup` (the front end) uses it on every monitor call: `os` at import time, and
`subprocess` only when a loop device is set up or torn down.
"""

from __future__ import annotations

import os

from xenha_lab.sim.lvm import state as st

LOSETUP_CANDIDATES = ("/usr/sbin/losetup", "/sbin/losetup")
DEFAULT_CHUNK_SECTORS = 8           # 4 KiB, lvm.conf default (snapshot chunk size)
BLOCK = 1 << 20                     # unit of the bulk reads and writes below


def find_binary(candidates) -> str:
    for path in candidates:
        if os.path.exists(path):
            return path
    raise FileNotFoundError(candidates[0])


def losetup(*args) -> str:
    import subprocess  # only when a device is set up or torn down (see the docstring)

    proc = subprocess.run([find_binary(LOSETUP_CANDIDATES), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise OSError(proc.stderr.strip() or "losetup failed")
    return proc.stdout.strip()


def set_read_ahead(dev: str, kib: int = 128):
    """dm devices of linear LVs read ahead 256 sectors by default; so does ours."""
    try:
        with open("/sys/block/%s/queue/read_ahead_kb" % os.path.basename(dev), "w") as handle:
            handle.write("%d\n" % kib)
    except OSError:
        pass


def read_ahead_sectors(record):
    dev = os.path.basename(record.get("dev", ""))
    try:
        with open("/sys/block/%s/queue/read_ahead_kb" % dev) as handle:
            return int(handle.read().strip()) * 2
    except (OSError, ValueError):
        return 256


def block_numbers(path: str):
    st_ = os.stat(path)
    return os.major(st_.st_rdev), os.minor(st_.st_rdev)


def make_links(state: st.NodeState, vg: str, lv: str, layer: str, major: int, minor: int):
    """/dev/mapper/<dm name> (a block node) and /dev/<vg>/<lv> -> it (visible LVs)."""
    name = st.dm_name(vg, lv, layer)
    mapper_dir = os.path.join(state.dev_root, "mapper")
    os.makedirs(mapper_dir, exist_ok=True)
    node = os.path.join(mapper_dir, name)
    if os.path.lexists(node):
        os.unlink(node)
    os.mknod(node, 0o660 | 0o060000, os.makedev(major, minor))
    links = [node]
    if not layer:
        vg_dir = os.path.join(state.dev_root, vg)
        os.makedirs(vg_dir, exist_ok=True)
        link = os.path.join(vg_dir, lv)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(node, link)
        links.insert(0, link)
    return links


def remove_links(record):
    for path in filter(None, record.get("links", "").split(",")):
        try:
            os.unlink(path)
        except OSError:
            pass
        parent = os.path.dirname(path)
        if os.path.basename(parent) != "mapper":
            try:
                os.rmdir(parent)          # /dev/<vg> goes with its last LV
            except OSError:
                pass


def detach_loop(dev: str):
    if not dev:
        return
    try:
        losetup("-d", dev)
    except OSError:
        pass


def remove_device(state: st.NodeState, record):
    """Tear down one mapped device (caller holds the state lock)."""
    remove_links(record)
    detach_loop(record.get("dev", ""))
    state.drop(record["uuid"])


def is_our_loop(record) -> bool:
    """Whether the record's loop device is still the one it mapped (bound, same device
    numbers, same offset and size, or same snapshot file): a number is reused once freed."""
    dev = record.get("dev", "")
    name = os.path.basename(dev)
    sysdir = "/sys/block/%s/loop" % name
    try:
        if os.stat(dev).st_rdev != os.makedev(int(record["major"]), int(record["minor"])):
            return False
        with open(os.path.join(sysdir, "backing_file"), encoding="utf-8") as handle:
            backing = handle.read().strip()
        if record.get("kind") == "snapshot":
            return os.path.basename(backing.removesuffix(" (deleted)")) == os.path.basename(record.get("snapfile", ""))
        with open(os.path.join(sysdir, "offset"), encoding="ascii") as handle:
            offset = int(handle.read())
        with open(os.path.join(sysdir, "sizelimit"), encoding="ascii") as handle:
            sizelimit = int(handle.read())
    except (OSError, KeyError, ValueError):
        return False
    table = record.get("table", "").split()
    return len(table) == 5 and offset == int(table[4]) * 512 and sizelimit == int(record.get("sectors", 0)) * 512


def power_off(state: st.NodeState) -> int:
    """A power cut: every mapped device of the node goes (its loop device detached, its
    record dropped); its /dev entries are the node's and go with the node's /dev. The
    number of loop devices detached."""
    detached = 0
    for record in state.devices():
        if is_our_loop(record):
            detach_loop(record["dev"])
            detached += 1
        state.drop(record["uuid"])
    return detached


def set_loop_geometry(dev: str, offset: int, sizelimit: int):
    """LOOP_GET_STATUS64 / LOOP_SET_STATUS64 with a new offset and size limit, then
    LOOP_SET_CAPACITY (what the kernel offers to resize a bound loop device)."""
    import fcntl
    import struct  # only for resizes

    loop_set_status64, loop_get_status64, loop_set_capacity = 0x4C04, 0x4C05, 0x4C07
    fmt = "QQQQQIIII64s64s32s2Q"
    fd = os.open(dev, os.O_RDONLY)
    try:
        buf = bytearray(struct.calcsize(fmt))
        fcntl.ioctl(fd, loop_get_status64, buf)
        fields = list(struct.unpack(fmt, bytes(buf)))
        fields[3], fields[4] = offset, sizelimit
        fcntl.ioctl(fd, loop_set_status64, struct.pack(fmt, *fields))
        fcntl.ioctl(fd, loop_set_capacity, 0)
    finally:
        os.close(fd)


# --- targets ----------------------------------------------------------------------
def map_linear(state: st.NodeState, vg: str, lv: str, vg_uuid: str, lv_uuid: str, pv_device: str,
               offset_sectors: int, sectors: int, mode: str, read_only: bool) -> dict:
    """A linear target: a loop device over `sectors` of `pv_device` from `offset_sectors`,
    its /dev entries and its record (caller holds the state lock)."""
    args = ["--find", "--show", "--offset", str(offset_sectors * 512), "--sizelimit", str(sectors * 512)]
    if read_only:
        args.append("--read-only")
    dev = losetup(*args, pv_device)
    set_read_ahead(dev)
    major, minor = block_numbers(dev)
    pv_major, pv_minor = block_numbers(pv_device)
    try:
        links = make_links(state, vg, lv, "", major, minor)
    except OSError:
        detach_loop(dev)
        raise
    record = {
        "name": st.dm_name(vg, lv), "uuid": st.dm_uuid(vg_uuid, lv_uuid),
        "vg": vg, "lv": lv, "layer": "", "vg_uuid": vg_uuid, "lv_uuid": lv_uuid,
        "kind": "linear", "dev": dev, "major": str(major), "minor": str(minor),
        "sectors": str(sectors),
        "table": "0 %d linear %d:%d %d" % (sectors, pv_major, pv_minor, offset_sectors),
        "ro": "1" if read_only else "0", "mode": mode, "links": ",".join(links), "events": "0",
    }
    state.put(record)
    return record


def map_snapshot(state: st.NodeState, vg: str, lv: str, vg_uuid: str, lv_uuid: str, origin: dict,
                 data_file: str, cow_device: str, cow_sectors: int, chunk: int, mode: str,
                 read_only: bool) -> None:
    """A snapshot target of the active `origin` record: a loop device over the
    snapshot's data file (caller holds the state lock). `cow_device` (the PV of the COW
    store) only names the exception store in the table."""
    args = ["--find", "--show"] + (["--read-only"] if read_only else []) + [data_file]
    dev = losetup(*args)
    set_read_ahead(dev)
    major, minor = block_numbers(dev)
    links = make_links(state, vg, lv, "", major, minor)
    sectors = int(origin["sectors"])
    try:
        pv_major, pv_minor = block_numbers(cow_device)
    except OSError:
        pv_major = pv_minor = 0
    state.put({
        "name": st.dm_name(vg, lv), "uuid": st.dm_uuid(vg_uuid, lv_uuid),
        "vg": vg, "lv": lv, "layer": "", "vg_uuid": vg_uuid, "lv_uuid": lv_uuid,
        "kind": "snapshot", "dev": dev, "major": str(major), "minor": str(minor),
        "sectors": str(sectors),
        "table": "0 %d snapshot %s:%s %d:%d P %d" % (sectors, origin["major"], origin["minor"],
                                                    pv_major, pv_minor, chunk),
        "ro": "1" if read_only else "0", "mode": mode, "links": ",".join(links),
        "origin_uuid": origin["lv_uuid"], "snapfile": data_file,
        "cow_sectors": str(cow_sectors), "chunk": str(chunk),
        "events": "0",
    })


# --- snapshot status --------------------------------------------------------------
def invalid_marker(path: str) -> str:
    return path + ".invalid"


def usage(state: st.NodeState, record):
    """(sectors_allocated, total_sectors, metadata_sectors, invalid) of an active snapshot."""
    path = record["snapfile"]
    chunk = int(record.get("chunk") or DEFAULT_CHUNK_SECTORS)
    total = int(record.get("cow_sectors") or 0)
    origin = None
    for other in state.devices():
        if other.get("lv_uuid") == record.get("origin_uuid") and other.get("kind") == "linear":
            origin = other
    if os.path.exists(invalid_marker(path)):
        return total, total, 0, True
    changed = 0
    if origin is not None:
        changed = count_changed_chunks(origin["dev"], path, int(origin["sectors"]) * 512, chunk * 512)
    per_area = chunk * 512 // 16
    metadata_chunks = 1 + 1 + changed // per_area
    allocated = (metadata_chunks + changed) * chunk
    if allocated > total:
        try:
            with open(invalid_marker(path), "w", encoding="utf-8") as handle:
                handle.write("invalid\n")
        except OSError:
            pass
        return total, total, 0, True
    return allocated, total, metadata_chunks * chunk, False


def count_changed_chunks(origin_dev: str, path: str, length: int, chunk_bytes: int) -> int:
    changed = 0
    fa = os.open(origin_dev, os.O_RDONLY)
    fb = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < length:
            n = min(BLOCK, length - pos)
            a = os.pread(fa, n, pos)
            b = os.pread(fb, n, pos)
            if len(b) < len(a):
                b = b + bytes(len(a) - len(b))
            if a != b:
                for i in range(0, len(a), chunk_bytes):
                    if a[i:i + chunk_bytes] != b[i:i + chunk_bytes]:
                        changed += 1
            pos += n
    finally:
        os.close(fa)
        os.close(fb)
    return changed


def dm_status(state: st.NodeState, record) -> str:
    allocated, total, metadata, invalid = usage(state, record)
    sectors = record.get("sectors", "0")
    if invalid:
        return "0 %s snapshot Invalid" % sectors
    return "0 %s snapshot %d/%d %d" % (sectors, allocated, total, metadata)
