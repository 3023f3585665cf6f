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

from xenha_lab.sim.lvm import devmapper as dm
from xenha_lab.sim.lvm import metadata
from xenha_lab.sim.lvm import state as st
from xenha_lab.sim.lvm.mapping import SimRefusal, linear_area
from xenha_lab.sim.lvm.runner import edit_vg, report_json, vg_metadata

# --- where the data lives ---------------------------------------------------------
def backing_file(device: str) -> str:
    name = os.path.basename(os.path.realpath(device))
    with open("/sys/block/%s/loop/backing_file" % name, encoding="utf-8") as handle:
        return handle.read().strip()


def data_dir_for(vg: metadata.VG, cow: metadata.LV) -> str:
    pv_key = cow.segments[0].areas()[0][0]
    pv = vg.pvs[pv_key]
    return backing_file(pv.device) + ".xenha-snapshots"


def data_path(vg: metadata.VG, cow: metadata.LV) -> str:
    return os.path.join(data_dir_for(vg, cow), cow.id)


# --- data -------------------------------------------------------------------------
def origin_region(vg: metadata.VG, origin: metadata.LV):
    """(pv device, byte offset, byte length) of a linear origin."""
    pv, pe, count = linear_area(vg, origin)
    return pv.device, (pv.pe_start + pe * vg.extent_size) * 512, count * vg.extent_size * 512


def copy_origin(vg, origin, origin_record, path: str):
    """The snapshot's data: the origin as it is now (holes where it reads zeros)."""
    if origin_record is not None:
        src, offset, length = origin_record["dev"], 0, int(origin_record["sectors"]) * 512
    else:
        src, offset, length = origin_region(vg, origin)
    zero = bytes(dm.BLOCK)
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
            n = min(dm.BLOCK, length - pos)
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
    for p in (path, dm.invalid_marker(path)):
        try:
            os.unlink(p)
        except OSError:
            pass


def forget(record):
    """A snapshot device went away with its LV: drop its data file."""
    if record.get("kind") == "snapshot" and record.get("snapfile"):
        remove_data(record["snapfile"])


def collect_garbage(user_config=None):
    """Drop data files of snapshots that no longer exist in their VG's metadata."""
    rows, _ = report_json("lvs", ["-a", "-o", "vg_name,lv_uuid"], user_config)
    vgs = {r.get("vg_name") for r in rows}
    known = {r.get("lv_uuid") for r in rows}
    dirs = set()
    for vg_name in vgs:
        vg = vg_metadata(vg_name, user_config)
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


# --- devices ----------------------------------------------------------------------
def activate_snapshots(state: st.NodeState, vg: metadata.VG, origin: metadata.LV, mode: str):
    """Create the snapshot devices of an active origin (caller holds the state lock)."""
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
        cow_pv = vg.pvs[cow.segments[0].areas()[0][0]]
        dm.map_snapshot(state, vg.name, cow.name, vg.id, cow.id, origin_record, path, cow_pv.device,
                        cow.extents * vg.extent_size, seg.chunk_size, mode, read_only=not cow.writable)


# --- usage ------------------------------------------------------------------------
def percent_text(allocated: int, total: int, metadata_sectors: int = 0) -> str:
    """lvm2's display of a dm percent: 2 decimals, never 0.00 when not empty nor
    100.00 when not full."""
    if total <= 0:
        return ""
    if allocated == metadata_sectors and metadata_sectors:
        return "0.00"
    value = 100.0 * allocated / total
    text = "%.2f" % value
    if text == "0.00" and allocated > 0:
        text = "0.01"
    if text == "100.00" and allocated < total:
        text = "99.99"
    return text


def snapshot_state(state: st.NodeState, record):
    """(percent text, invalid) for reports."""
    allocated, total, _metadata_sectors, invalid = dm.usage(state, record)
    if invalid:
        return "100.00", True
    return percent_text(allocated, total, 0), False


# --- merge ------------------------------------------------------------------------
def restore_into_origin(target_dev: str, offset: int, length: int, path: str):
    """Write the snapshot's data over the origin (only the blocks that differ)."""
    fo = os.open(target_dev, os.O_RDWR)
    fs = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < length:
            n = min(dm.BLOCK, length - pos)
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
    def change(root: metadata.Section):
        lvs = root.section(vg_name).section("logical_volumes")
        lvs.remove(snap_lv_name)
        lvs.remove(cow_name)

    return edit_vg(vg_name, change, user_config)


def complete_merge(state: st.NodeState, vg: metadata.VG, origin: metadata.LV, seg, user_config=None,
                   target=None):
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
    cow_record = state.by_lv_uuid(cow.id)
    if cow_record is not None:
        dm.remove_device(state, cow_record)
    ok, text = drop_snapshot_metadata(vg.name, snap_lv.name, cow_name, user_config)
    if not ok:
        raise SimRefusal(text.strip() or "xenha-sim: merge of %s/%s failed" % (vg.name, cow_name))
    remove_data(path)
    return vg_metadata(vg.name, user_config)


def finish_merge(state: st.NodeState, vg, origin, seg, user_config=None):
    """A deferred merge completes when the origin is activated (caller holds the lock)."""
    return complete_merge(state, vg, origin, seg, user_config)
