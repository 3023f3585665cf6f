"""Old-style (COW) LVM snapshots on a machine without device-mapper.

Real lvm2 refuses them here (`Can't create snapshot without using device-mapper kernel
driver.`, rc 5, shared/samples/lvm_05). The simulator creates them the way lvm2 would
look afterwards and keeps their data faithfully enough for rollbacks:

- `lvcreate -s|--snapshot [-L size | -l extents[%ORIGIN|%VG|%FREE|%PVS]] [-n name]
  [-c chunk] [-p r|rw] [--addtag t] vg/origin` (also `/dev/vg/origin`, `--type snapshot`):
  the real lvcreate runs first with the same arguments and does every check it does
  before the device-mapper refusal (origin not found, name in use, option errors,
  `Reducing COW size … down to maximum usable size …`); then the COW store is allocated
  by the real lvcreate as a plain linear LV of the snapshot's size (free-space errors
  are lvm's own: `Volume group "vg" has insufficient free space (N extents): M
  required.`), and the snapshot relation is injected into the metadata with vgcfgbackup
  → edit → vgcfgrestore (a hidden `snapshotN` LV with a `type = "snapshot"` segment:
  chunk_size, origin, cow_store — lvm2 lib/snapshot/snapshot.c). lvs then reports the
  origin `owi-…s---` and the snapshot `swi-…s---` with `origin` set (samples/lvm_08).
- Data: copy-on-write is simulated as a full copy of the origin taken at creation (holes
  stay holes), kept next to the PV's backing file that holds the COW extents
  (`<pv image>.xenha-snapshots/<cow lv uuid>`), so it persists with the disk and is
  seen by every node sharing the PV. While the origin is active the snapshot is a real
  block device too (a loop device over that copy; writes to it are kept and merged).
- snap_percent/data_percent: dm-snapshot's `sectors_allocated/total_sectors` from the
  chunks that differ between the origin and the copy (a header chunk, one metadata
  chunk per chunk_size/16 exceptions, one chunk per exception), shown like lvm2
  (`0.01` minimum when not empty). Past the COW size the snapshot becomes invalid (lv_attr
  `I`, 100.00, `lv_snapshot_invalid`), and stays so. Rewrites of identical data are not
  counted (real COW counts every first write of a chunk).
- `lvremove vg/snap`: the real lvremove edits the metadata; the device and the copy go.
- `lvconvert --merge vg/snap` (lvm2 tools/lvconvert.c): an invalid snapshot is refused
  (`Unable to merge invalidated snapshot LV "snap".`, rc 5). If the origin is active and
  neither it nor the snapshot is open, the merge happens now: `Merging of volume vg/snap
  started.`, `vg/lv: Merged: 100.00%`, the origin's content becomes the snapshot's and the
  snapshot disappears. Otherwise it is DEFERRED as lvm2 does (`Delaying merge since
  origin is open.` / `…snapshot is open.` then `Merging of snapshot vg/snap will occur on
  next activation of vg/lv.`): the metadata marks the snapshot merging (`merging_store`,
  lv_attr `Owi…`/`Swi…`, the snapshot shown as `[snap]`), and the next activation of the
  origin on any node completes the merge before the device appears (lvm2 would start it
  then and let lvmpolld finish it in the background; here it completes at once).

Limits: the snapshot sequence is not atomic against concurrent lvm commands on the VG
(it is serialised against the simulator's own activations on the node); virtual (-V)
snapshots, thin snapshots and snapshots of snapshots are refused like lvm2 or with a
`xenha-sim:` message; origins are resized by lvm2 only when no snapshot exists.
"""

from __future__ import annotations

import os
import random
import re
import socket
import string
import sys
import tempfile
import time

from xenha_lab.sim.lvm import lvm
from xenha_lab.sim.lvm import lvm_meta
from xenha_lab.sim.lvm import lvm_state as st

DM_REFUSAL = "Can't create snapshot without using device-mapper kernel driver."
DEFAULT_CHUNK_SECTORS = 8           # 4 KiB, lvm.conf default (snapshot chunk size)
BLOCK = 1 << 20
REDUCING = re.compile(r"Reducing COW size .* down to maximum usable size (\S+) (\S+)\.")


# --- where the data lives ------------------------------------------------------------
def backing_file(device: str) -> str:
    name = os.path.basename(os.path.realpath(device))
    with open("/sys/block/%s/loop/backing_file" % name, encoding="utf-8") as handle:
        return handle.read().strip()


def data_dir_for(vg: lvm_meta.VG, cow: lvm_meta.LV) -> str:
    pv_key = cow.segments[0].areas()[0][0]
    pv = vg.pvs[pv_key]
    return backing_file(pv.device) + ".xenha-snapshots"


def data_path(vg: lvm_meta.VG, cow: lvm_meta.LV) -> str:
    return os.path.join(data_dir_for(vg, cow), cow.id)


def invalid_marker(path: str) -> str:
    return path + ".invalid"


# --- lvcreate -s ----------------------------------------------------------------------
def is_snapshot_request(args) -> bool:
    if lvm.has_flag(args, "-s", "--snapshot"):
        return True
    segtype = lvm.option_value(args, "--type")
    return segtype == "snapshot"


UNITS = {"b": 1, "s": 512, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50,
         "e": 1 << 60}


def size_bytes(text: str, default_unit: str = "m") -> int:
    text = text.strip()
    unit = default_unit
    if text and text[-1].lower() in UNITS:
        unit = text[-1].lower()
        text = text[:-1]
    if text and text[-1].lower() == "i":       # "MiB" style is not lvm syntax, be lenient
        text = text[:-1]
    return int(float(text) * UNITS[unit])


def parse_origin(args, user_config):
    """(vg name, origin name, snapshot name or None) from the lvcreate arguments."""
    name = lvm.option_value(args, "-n", "--name")
    origin = None
    for arg in lvm.positionals(args):
        origin = arg
    if origin is None:
        return None, None, name
    if origin.startswith("/dev/mapper/"):
        vg, lv, _ = st.split_dm_name(origin[len("/dev/mapper/"):])
    elif origin.startswith("/dev/"):
        parts = origin[len("/dev/"):].split("/")
        vg, lv = (parts[0], parts[1]) if len(parts) >= 2 else (parts[0], "")
    else:
        vg, _, lv = origin.partition("/")
    if name and "/" in name:
        name = name.split("/", 1)[1]
    return vg, lv, name


def cmd_lvcreate_snapshot(args, user_config) -> int:
    out = lvm.Output()
    if lvm.option_value(args, "-V", "--virtualsize"):
        return lvm.passthrough("lvcreate", args + (["--config", user_config] if user_config else []))
    proc = lvm.run_lvm("lvcreate", args, user_config, stdin=sys.stdin)
    err_lines = proc.stderr.splitlines(keepends=True)
    if proc.returncode == 0 or not any(line.strip() == DM_REFUSAL for line in err_lines):
        sys.stderr.write(proc.stderr)
        sys.stdout.write(proc.stdout)
        return proc.returncode
    # lvm2 accepted everything up to the device-mapper check: do the rest.
    pre_out = proc.stdout
    pre_err = "".join(line for line in err_lines if line.strip() != DM_REFUSAL)
    vg_name, origin_name, snap_name = parse_origin(args, user_config)
    activator = lvm.Activator(out, user_config)
    vg = activator.vg(vg_name) if vg_name else None
    if vg is None or origin_name not in vg.lvs:
        sys.stderr.write(pre_err + "  " + DM_REFUSAL + "\n")
        return 5
    origin = vg.lvs[origin_name]
    if vg.cow_segment(origin_name)[1] is not None:
        sys.stderr.write(pre_err + "  Snapshots of snapshots are not supported.\n")
        return 5
    if any(s.merging_store for _, s in vg.snapshots_of(origin_name)):
        sys.stderr.write(pre_err + "  Snapshots of an origin that has a merging snapshot is not "
                         "supported\n")
        return 5
    extents = cow_extents(args, vg, origin, pre_out + pre_err, user_config)
    if snap_name is None:
        snap_name = next_name(vg, "lvol%d")
    chunk = DEFAULT_CHUNK_SECTORS
    chunk_arg = lvm.option_value(args, "-c", "--chunksize")
    if chunk_arg:
        chunk = size_bytes(chunk_arg, "k") // 512
    read_only = (lvm.option_value(args, "-p", "--permission") or "rw") == "r"
    create = ["-an", "-Zn", "-Wn", "-l", str(extents), "-n", snap_name]
    for tag in tag_values(args):
        create += ["--addtag", tag]
    create.append(vg_name)
    state = activator.state
    with state:
        made = lvm.run_lvm("lvcreate", create, user_config, extra_noise=(
            "WARNING: Logical volume %s/%s not zeroed." % (vg_name, snap_name),))
        if made.returncode != 0:
            sys.stderr.write(pre_err + made.stderr)
            sys.stdout.write(pre_out)
            return made.returncode
        vg = activator.vg(vg_name, refresh=True)
        cow = vg.lvs[snap_name]
        origin = vg.lvs[origin_name]
        origin_record = state.by_lv_uuid(origin.id)
        path = data_path(vg, cow)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        copy_origin(vg, origin, origin_record, path)

        def add_snapshot(root: lvm_meta.Section):
            vg_sec = root.section(vg.name)
            lvs = vg_sec.section("logical_volumes")
            cow_sec = lvs.section(snap_name)
            if read_only:
                cow_sec.set("flags", [f for f in cow_sec.get("flags", []) if f != "WRITE_LOCKED"])
                cow_sec.set("status", [s for s in cow_sec.get("status", []) if s != "WRITE"])
            snap = lvm_meta.Section(next_name(vg, "snapshot%d"))
            snap.items = [
                ("id", new_uuid()),
                ("status", [x for x in cow_sec.get("status", ["READ"]) if x != "VISIBLE"]),
                ("flags", list(cow_sec.get("flags", []))),
                ("creation_time", int(time.time())),
                ("creation_host", socket.gethostname()),
                ("segment_count", 1),
            ]
            seg = lvm_meta.Section("segment1")
            seg.items = [("start_extent", 0), ("extent_count", origin.extents), ("type", "snapshot"),
                         ("chunk_size", chunk), ("origin", origin_name), ("cow_store", snap_name)]
            snap.items.append(("segment1", seg))
            lvs.items.append((snap.name, snap))

        ok, text = edit_vg(vg_name, add_snapshot, user_config)
        if not ok:
            lvm.run_lvm("lvremove", ["-f", "%s/%s" % (vg_name, snap_name)], user_config)
            remove_data(path)
            sys.stderr.write(pre_err + text)
            return 5
        vg = activator.vg(vg_name, refresh=True)
        if origin_record is not None:
            activate_snapshots(activator, vg, vg.lvs[origin_name], origin_record.get("mode", "y"))
    sys.stderr.write(pre_err)
    sys.stdout.write(pre_out)
    sys.stdout.write('  Logical volume "%s" created.\n' % snap_name)
    return 0


def tag_values(args):
    tags, i = [], 0
    while i < len(args):
        if args[i] == "--addtag" and i + 1 < len(args):
            tags.append(args[i + 1])
            i += 2
            continue
        if args[i].startswith("--addtag="):
            tags.append(args[i].split("=", 1)[1])
        i += 1
    return tags


def cow_extents(args, vg: lvm_meta.VG, origin: lvm_meta.LV, messages: str, user_config) -> int:
    ext_bytes = vg.extent_size * 512
    reduced = REDUCING.search(messages)
    if reduced:
        return -(-int(size_bytes(reduced.group(1) + reduced.group(2)[0])) // ext_bytes)
    size = lvm.option_value(args, "-L", "--size")
    if size:
        return max(1, -(-size_bytes(size) // ext_bytes))
    extents = lvm.option_value(args, "-l", "--extents") or "0"
    if "%" in extents:
        number, _, base = extents.partition("%")
        pct = float(number)
        base = base.upper()
        if base == "ORIGIN":
            total = origin.extents
        else:
            rows, _ = lvm.report_json("vgs", ["-o", "vg_extent_count,vg_free_count", vg.name], user_config)
            row = rows[0] if rows else {}
            total = int(row.get("vg_free_count" if base in ("FREE", "PVS") else "vg_extent_count", 0) or 0)
        return max(1, -(-int(total * pct) // 100))
    return max(1, int(extents))


def next_name(vg: lvm_meta.VG, pattern: str) -> str:
    i = 0
    while pattern % i in vg.lvs:
        i += 1
    return pattern % i


def new_uuid() -> str:
    chars = string.ascii_letters + string.digits
    groups = (6, 4, 4, 4, 4, 4, 6)
    return "-".join("".join(random.choice(chars) for _ in range(n)) for n in groups)


def edit_vg(vg_name: str, change, user_config=None):
    """vgcfgbackup -f → change(root section) → vgcfgrestore -f. (ok, stderr text)"""
    fd, path = tempfile.mkstemp(prefix="xenha-sim-edit-", suffix=".vg")
    os.close(fd)
    try:
        proc = lvm.run_lvm("vgcfgbackup", ["-f", path, vg_name], user_config)
        if proc.returncode != 0:
            return False, proc.stderr
        with open(path, encoding="utf-8") as handle:
            root = lvm_meta.parse(handle.read())
        change(root)
        header = "contents = \"Text Format Volume Group\"\nversion = 1\n\n"
        body = lvm_meta.Section()
        body.items = [(k, v) for k, v in root.items if k not in ("contents", "version")]
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(header + lvm_meta.format(body))
        proc = lvm.run_lvm("vgcfgrestore", ["-f", path, vg_name], user_config)
        return proc.returncode == 0, proc.stderr
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


# --- data ------------------------------------------------------------------------------
def origin_region(vg: lvm_meta.VG, origin: lvm_meta.LV):
    """(pv device, byte offset, byte length) of a linear origin."""
    pv, pe, count = lvm.linear_area(vg, origin)
    return pv.device, (pv.pe_start + pe * vg.extent_size) * 512, count * vg.extent_size * 512


def copy_origin(vg, origin, origin_record, path: str):
    """The snapshot's data: the origin as it is now (holes where it reads zeros)."""
    if origin_record is not None:
        src, offset, length = origin_record["dev"], 0, int(origin_record["sectors"]) * 512
    else:
        src, offset, length = origin_region(vg, origin)
    zero = bytes(BLOCK)
    fd_in = os.open(src, os.O_RDONLY)
    fd_out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if origin_record is not None:
            try:
                os.fsync(fd_in)
            except OSError:
                pass
        pos = 0
        while pos < length:
            n = min(BLOCK, length - pos)
            data = os.pread(fd_in, n, offset + pos)
            if data != zero[:len(data)]:
                os.pwrite(fd_out, data, pos)
            pos += n
        os.ftruncate(fd_out, length)
        os.fsync(fd_out)
    finally:
        os.close(fd_in)
        os.close(fd_out)


def remove_data(path: str):
    for p in (path, invalid_marker(path)):
        try:
            os.unlink(p)
        except OSError:
            pass


def forget(record):
    """A snapshot device went away with its LV: drop its data file."""
    if record.get("kind") == "snapshot" and record.get("snapfile"):
        remove_data(record["snapfile"])


def collect_garbage(activator):
    """Drop data files of snapshots that no longer exist in their VG's metadata."""
    rows, _ = lvm.report_json("lvs", ["-a", "-o", "vg_name,lv_uuid"], activator.user_config)
    vgs = {r.get("vg_name") for r in rows}
    known = {r.get("lv_uuid") for r in rows}
    dirs = set()
    for vg_name in vgs:
        vg = activator.vg(vg_name, refresh=True)
        if vg is None:
            continue
        for pv in vg.pvs.values():
            if pv.missing:
                continue
            try:
                dirs.add(backing_file(pv.device) + ".xenha-snapshots")
            except OSError:
                continue
        known |= {lv.id for lv in vg.lvs.values()}
    for directory in dirs:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            uuid = entry[:-len(".invalid")] if entry.endswith(".invalid") else entry
            if uuid not in known:
                try:
                    os.unlink(os.path.join(directory, entry))
                except OSError:
                    pass


# --- devices ---------------------------------------------------------------------------
def activate_snapshots(activator, vg: lvm_meta.VG, origin: lvm_meta.LV, mode: str):
    """Create the snapshot devices of an active origin (caller holds the state lock)."""
    state = activator.state
    origin_record = state.by_lv_uuid(origin.id)
    if origin_record is None:
        return
    for _, seg in vg.snapshots_of(origin.name):
        cow_name = seg.cow_store or seg.merging_store
        cow = vg.lvs.get(cow_name)
        if cow is None or state.by_lv_uuid(cow.id):
            continue
        path = data_path(vg, cow)
        if not os.path.exists(path):
            # no data (created outside the simulator): the snapshot equals the origin now
            os.makedirs(os.path.dirname(path), exist_ok=True)
            copy_origin(vg, origin, origin_record, path)
        read_only = not cow.writable
        args = ["--find", "--show"] + (["--read-only"] if read_only else []) + [path]
        dev = lvm.losetup(*args)
        lvm.set_read_ahead(dev)
        major, minor = lvm.block_numbers(dev)
        links = lvm.make_links(state, vg.name, cow.name, "", major, minor)
        sectors = int(origin_record["sectors"])
        pv_key = cow.segments[0].areas()[0][0]
        try:
            pv_major, pv_minor = lvm.block_numbers(vg.pvs[pv_key].device)
        except OSError:
            pv_major = pv_minor = 0
        state.put({
            "name": st.dm_name(vg.name, cow.name), "uuid": st.dm_uuid(vg.id, cow.id),
            "vg": vg.name, "lv": cow.name, "layer": "", "vg_uuid": vg.id, "lv_uuid": cow.id,
            "kind": "snapshot", "dev": dev, "major": str(major), "minor": str(minor),
            "sectors": str(sectors),
            "table": "0 %d snapshot %s:%s %d:%d P %d" % (sectors, origin_record["major"],
                                                        origin_record["minor"], pv_major, pv_minor,
                                                        seg.chunk_size),
            "ro": "1" if read_only else "0", "mode": mode, "links": ",".join(links),
            "origin_uuid": origin.id, "snapfile": path,
            "cow_sectors": str(cow.extents * vg.extent_size), "chunk": str(seg.chunk_size),
            "events": "0",
        })


# --- usage -----------------------------------------------------------------------------
def usage(record):
    """(sectors_allocated, total_sectors, metadata_sectors, invalid) of an active snapshot."""
    path = record["snapfile"]
    chunk = int(record.get("chunk") or DEFAULT_CHUNK_SECTORS)
    total = int(record.get("cow_sectors") or 0)
    origin = None
    for other in st.NodeState().devices():
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


def percent_text(allocated: int, total: int, metadata: int = 0) -> str:
    """lvm2's display of a dm percent: 2 decimals, never 0.00 when not empty nor
    100.00 when not full."""
    if total <= 0:
        return ""
    if allocated == metadata and metadata:
        return "0.00"
    value = 100.0 * allocated / total
    text = "%.2f" % value
    if text == "0.00" and allocated > 0:
        text = "0.01"
    if text == "100.00" and allocated < total:
        text = "99.99"
    return text


def snapshot_state(record):
    """(percent text, invalid) for reports."""
    allocated, total, metadata, invalid = usage(record)
    if invalid:
        return "100.00", True
    return percent_text(allocated, total, 0), False


def dm_status(record) -> str:
    allocated, total, metadata, invalid = usage(record)
    sectors = record.get("sectors", "0")
    if invalid:
        return "0 %s snapshot Invalid" % sectors
    return "0 %s snapshot %d/%d %d" % (sectors, allocated, total, metadata)


# --- merge -----------------------------------------------------------------------------
def restore_into_origin(target_dev: str, offset: int, length: int, path: str):
    """Write the snapshot's data over the origin (only the blocks that differ)."""
    fo = os.open(target_dev, os.O_RDWR)
    fs = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < length:
            n = min(BLOCK, length - pos)
            want = os.pread(fs, n, pos)
            if len(want) < n:
                want = want + bytes(n - len(want))
            have = os.pread(fo, n, offset + pos)
            if have != want:
                os.pwrite(fo, want, offset + pos)
            pos += n
        os.fsync(fo)
    finally:
        os.close(fo)
        os.close(fs)


def drop_snapshot_metadata(vg_name: str, snap_lv_name: str, cow_name: str, user_config=None):
    def change(root: lvm_meta.Section):
        lvs = root.section(vg_name).section("logical_volumes")
        lvs.remove(snap_lv_name)
        lvs.remove(cow_name)

    return edit_vg(vg_name, change, user_config)


def complete_merge(activator, vg: lvm_meta.VG, origin: lvm_meta.LV, seg, target=None):
    """Origin := snapshot data; the snapshot leaves the metadata. Returns the new VG."""
    cow_name = seg.cow_store or seg.merging_store
    cow = vg.lvs[cow_name]
    path = data_path(vg, cow)
    if target is None:
        dev, offset, length = origin_region(vg, origin)
    else:
        dev, offset, length = target["dev"], 0, int(target["sectors"]) * 512
    if os.path.exists(path):
        restore_into_origin(dev, offset, length, path)
    snap_lv = [lv for lv, s in vg.snapshot_segments() if s is seg][0]
    state = activator.state
    cow_record = state.by_lv_uuid(cow.id)
    if cow_record is not None:
        lvm.remove_device(state, cow_record)
    ok, text = drop_snapshot_metadata(vg.name, snap_lv.name, cow_name, activator.user_config)
    if not ok:
        raise lvm.SimRefusal(text.strip() or "xenha-sim: merge of %s/%s failed" % (vg.name, cow_name))
    remove_data(path)
    return activator.vg(vg.name, refresh=True)


def finish_merge(activator, vg, origin, seg):
    """A deferred merge completes when the origin is activated (caller holds the lock)."""
    return complete_merge(activator, vg, origin, seg)


def cmd_merge(args, user_config) -> int:
    out = lvm.Output()
    activator = lvm.Activator(out, user_config)
    targets = []
    for arg in lvm.positionals(args):
        vg_name, lv_name, _ = parse_origin([arg], user_config)
        targets.append((vg_name, lv_name))
    if not targets:
        return lvm.passthrough("lvconvert", args + (["--config", user_config] if user_config else []))
    rc = 0
    for vg_name, lv_name in targets:
        vg = activator.vg(vg_name, refresh=True)
        if vg is None or lv_name not in vg.lvs:
            # let lvm2 say what is wrong (not found, foreign, ...)
            proc = lvm.run_lvm("lvconvert", ["--merge", "%s/%s" % (vg_name, lv_name)], user_config)
            sys.stderr.write(proc.stderr)
            sys.stdout.write(proc.stdout)
            rc = max(rc, proc.returncode or 5)
            continue
        snap_lv, seg = vg.cow_segment(lv_name)
        if seg is None:
            out.error('"%s" is not a mergeable logical volume.' % lv_name)
            rc = 5
            continue
        if seg.merging_store:
            out.error("Snapshot %s is already merging." % lv_name)
            rc = 5
            continue
        origin = vg.lvs[seg.origin]
        cow = vg.lvs[lv_name]
        state = activator.state
        cow_record = state.by_lv_uuid(cow.id)
        if cow_record is not None and snapshot_state(cow_record)[1]:
            out.error('Unable to merge invalidated snapshot LV "%s".' % lv_name)
            rc = 5
            continue
        if os.path.exists(invalid_marker(data_path(vg, cow))):
            out.error('Unable to merge invalidated snapshot LV "%s".' % lv_name)
            rc = 5
            continue
        origin_record = state.by_lv_uuid(origin.id)
        defer = origin_record is None
        if origin_record is not None:
            if state.holders_of(origin_record):
                out.print("Delaying merge since origin is open.")
                defer = True
            elif cow_record is not None and state.holders_of(cow_record):
                out.print("Delaying merge since snapshot is open.")
                defer = True
        with state:
            if defer:
                def mark(root: lvm_meta.Section, snap_name=snap_lv.name, cow_name=lv_name):
                    lvs = root.section(vg_name).section("logical_volumes")
                    segment = lvs.section(snap_name).section("segment1")
                    segment.remove("cow_store")
                    segment.set("merging_store", cow_name)

                ok, text = edit_vg(vg_name, mark, user_config)
                if not ok:
                    out.error(text.strip())
                    rc = 5
                    continue
                out.print("Merging of snapshot %s/%s will occur on next activation of %s/%s."
                          % (vg_name, lv_name, vg_name, origin.name))
                continue
            if cow_record is not None:
                flush_device(cow_record["dev"])
            try:
                complete_merge(activator, vg, origin, seg, target=origin_record)
            except lvm.SimRefusal as refusal:
                out.error(str(refusal))
                rc = 5
                continue
            out.print("Merging of volume %s/%s started." % (vg_name, lv_name))
            out.print("%s/%s: Merged: 100.00%%" % (vg_name, origin.name))
    out.flush()
    return rc


def flush_device(dev: str):
    try:
        fd = os.open(dev, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
