"""`lvcreate -s` and `lvconvert --merge` of the simulated lvm (old-style COW snapshots,
which real lvm2 refuses without device-mapper): what each does is described in
`xenha_lab.sim.lvm.snapshot`."""

from __future__ import annotations

import os
import random
import re
import socket
import string
import sys
import time

from xenha_lab.sim.lvm import devmapper as dm
from xenha_lab.sim.lvm import metadata, snapshot
from xenha_lab.sim.lvm import state as st
from xenha_lab.sim.lvm.activation import Activator
from xenha_lab.sim.lvm.cmdline import Output, has_flag, option_value, positionals
from xenha_lab.sim.lvm.mapping import SimRefusal
from xenha_lab.sim.lvm.runner import edit_vg, passthrough, report_json, run_lvm

DM_REFUSAL = "Can't create snapshot without using device-mapper kernel driver."
REDUCING = re.compile(r"Reducing COW size .* down to maximum usable size (\S+) (\S+)\.")


def is_snapshot_request(args) -> bool:
    if has_flag(args, "-s", "--snapshot"):
        return True
    segtype = option_value(args, "--type")
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
    name = option_value(args, "-n", "--name")
    origin = None
    for arg in positionals(args):
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
    out = Output()
    if option_value(args, "-V", "--virtualsize"):
        return passthrough("lvcreate", args + (["--config", user_config] if user_config else []))
    proc = run_lvm("lvcreate", args, user_config, stdin=sys.stdin)
    err_lines = proc.stderr.splitlines(keepends=True)
    if proc.returncode == 0 or not any(line.strip() == DM_REFUSAL for line in err_lines):
        sys.stderr.write(proc.stderr)
        sys.stdout.write(proc.stdout)
        return proc.returncode
    # lvm2 accepted everything up to the device-mapper check: do the rest.
    pre_out = proc.stdout
    pre_err = "".join(line for line in err_lines if line.strip() != DM_REFUSAL)
    vg_name, origin_name, snap_name = parse_origin(args, user_config)
    activator = Activator(out, user_config)
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
    chunk = dm.DEFAULT_CHUNK_SECTORS
    chunk_arg = option_value(args, "-c", "--chunksize")
    if chunk_arg:
        chunk = size_bytes(chunk_arg, "k") // 512
    read_only = (option_value(args, "-p", "--permission") or "rw") == "r"
    create = ["-an", "-Zn", "-Wn", "-l", str(extents), "-n", snap_name]
    for tag in tag_values(args):
        create += ["--addtag", tag]
    create.append(vg_name)
    state = activator.state
    with state:
        made = run_lvm("lvcreate", create, user_config, extra_noise=(
            "WARNING: Logical volume %s/%s not zeroed." % (vg_name, snap_name),))
        if made.returncode != 0:
            sys.stderr.write(pre_err + made.stderr)
            sys.stdout.write(pre_out)
            return made.returncode
        vg = activator.vg(vg_name, refresh=True)
        cow = vg.lvs[snap_name]
        origin = vg.lvs[origin_name]
        origin_record = state.by_lv_uuid(origin.id)
        path = snapshot.data_path(vg, cow)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        snapshot.copy_origin(vg, origin, origin_record, path)

        def add_snapshot(root: metadata.Section):
            vg_sec = root.section(vg.name)
            lvs = vg_sec.section("logical_volumes")
            cow_sec = lvs.section(snap_name)
            if read_only:
                cow_sec.set("flags", [f for f in cow_sec.get("flags", []) if f != "WRITE_LOCKED"])
                cow_sec.set("status", [s for s in cow_sec.get("status", []) if s != "WRITE"])
            snap = metadata.Section(next_name(vg, "snapshot%d"))
            snap.items = [
                ("id", new_uuid()),
                ("status", [x for x in cow_sec.get("status", ["READ"]) if x != "VISIBLE"]),
                ("flags", list(cow_sec.get("flags", []))),
                ("creation_time", int(time.time())),
                ("creation_host", socket.gethostname()),
                ("segment_count", 1),
            ]
            seg = metadata.Section("segment1")
            seg.items = [("start_extent", 0), ("extent_count", origin.extents), ("type", "snapshot"),
                         ("chunk_size", chunk), ("origin", origin_name), ("cow_store", snap_name)]
            snap.items.append(("segment1", seg))
            lvs.items.append((snap.name, snap))

        ok, text = edit_vg(vg_name, add_snapshot, user_config)
        if not ok:
            run_lvm("lvremove", ["-f", "%s/%s" % (vg_name, snap_name)], user_config)
            snapshot.remove_data(path)
            sys.stderr.write(pre_err + text)
            return 5
        vg = activator.vg(vg_name, refresh=True)
        if origin_record is not None:
            snapshot.activate_snapshots(state, vg, vg.lvs[origin_name], origin_record.get("mode", "y"))
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


def cow_extents(args, vg: metadata.VG, origin: metadata.LV, messages: str, user_config) -> int:
    ext_bytes = vg.extent_size * 512
    reduced = REDUCING.search(messages)
    if reduced:
        return -(-int(size_bytes(reduced.group(1) + reduced.group(2)[0])) // ext_bytes)
    size = option_value(args, "-L", "--size")
    if size:
        return max(1, -(-size_bytes(size) // ext_bytes))
    extents = option_value(args, "-l", "--extents") or "0"
    if "%" in extents:
        number, _, base = extents.partition("%")
        pct = float(number)
        base = base.upper()
        if base == "ORIGIN":
            total = origin.extents
        else:
            rows, _ = report_json("vgs", ["-o", "vg_extent_count,vg_free_count", vg.name], user_config)
            row = rows[0] if rows else {}
            total = int(row.get("vg_free_count" if base in ("FREE", "PVS") else "vg_extent_count", 0) or 0)
        return max(1, -(-int(total * pct) // 100))
    return max(1, int(extents))


def next_name(vg: metadata.VG, pattern: str) -> str:
    i = 0
    while pattern % i in vg.lvs:
        i += 1
    return pattern % i


def new_uuid() -> str:
    chars = string.ascii_letters + string.digits
    groups = (6, 4, 4, 4, 4, 4, 6)
    return "-".join("".join(random.choice(chars) for _ in range(n)) for n in groups)


def cmd_merge(args, user_config) -> int:
    out = Output()
    activator = Activator(out, user_config)
    targets = []
    for arg in positionals(args):
        vg_name, lv_name, _ = parse_origin([arg], user_config)
        targets.append((vg_name, lv_name))
    if not targets:
        return passthrough("lvconvert", args + (["--config", user_config] if user_config else []))
    rc = 0
    for vg_name, lv_name in targets:
        vg = activator.vg(vg_name, refresh=True)
        if vg is None or lv_name not in vg.lvs:
            # let lvm2 say what is wrong (not found, foreign, ...)
            proc = run_lvm("lvconvert", ["--merge", "%s/%s" % (vg_name, lv_name)], user_config)
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
        if cow_record is not None and snapshot.snapshot_state(state, cow_record)[1]:
            out.error('Unable to merge invalidated snapshot LV "%s".' % lv_name)
            rc = 5
            continue
        if os.path.exists(dm.invalid_marker(snapshot.data_path(vg, cow))):
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
                def mark(root: metadata.Section, snap_name=snap_lv.name, cow_name=lv_name):
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
                snapshot.complete_merge(state, vg, origin, seg, user_config, target=origin_record)
            except SimRefusal as refusal:
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
