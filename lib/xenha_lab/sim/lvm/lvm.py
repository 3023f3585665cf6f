"""lvm2 commands for a machine without device-mapper: the real lvm2 does everything it
can, the simulator adds what activation would have done.

Installed as `lvm` and as every lvm command name (lvs vgs pvs lvchange vgchange lvcreate
lvremove lvconvert lvextend lvreduce lvresize lvrename vgrename vgremove vgcfgbackup
vgcfgrestore lvmconfig lvdisplay lvscan vgdisplay pvcreate vgcreate ...): dispatch on
argv[0]'s basename, or on the first argument of `lvm <command>`. Every command runs the
REAL binary (/usr/sbin/lvm or /sbin/lvm) with the same arguments and `activation=0`
forced through `--config` (merged into the user's own `--config`, which lvm accepts only
once). With activation disabled, lvm2 still does all of its metadata work for real —
PV/VG/LV metadata, tags, system ID, foreign-VG refusals, reports, error texts and exit
codes — and prints `WARNING: Activation disabled. No device-mapper interaction will be
attempted.`, which a real host never prints: that line (and the device-mapper noise of
commands that probe the kernel anyway) is dropped.

What is simulated, as real lvm2 would do it with device-mapper (texts from lvm2's
lib/activate/activate.c, tools/vgchange.c, tools/lvconvert.c, lib/metadata/lv.c):

- Activation (`lvchange -a y|n|ey|sy|ay|ly|ln`, `vgchange -a…`, lvcreate's default
  `-ay`): the real command runs first and validates (existence, syntax, foreign system
  ID `Cannot access VG … with system ID … with local system ID …`, rc 0/3/5); then the
  simulator applies what activation=0 skipped:
  * `activation/volume_list` (and `auto_activation_volume_list` for `-aay`): an LV that
    does not pass is silently not activated (resource-agents#1909);
    `read_only_volume_list` activates read-only;
  * a partial LV (a PV missing) is refused: `Refusing activation of partial LV vg/lv.
    Use '--activationmode partial' to override.`, rc 5;
  * deactivating an open LV is refused: `Logical volume vg/lv in use.` (after lvm's 25
    retries of 0.2 s when `activation/retry_deactivation` is on, its default), or
    `Logical volume vg/lv is used by another device.` at once when the holder is a block
    device (DRBD); `vgchange -an` adds `Can't deactivate volume group "vg" with N open
    logical volume(s)`; rc 5;
  * exclusive/shared requests (`ey`/`sy`) are recorded; without lvmlockd a single node
    cannot tell more (real lvm2 2.03 activates locally in both cases);
  * `vgchange -a` reports the real count in `N logical volume(s) in volume group "vg"
    now active`; the LV skip-activation flag and `--setautoactivation n` are honoured.
- An active linear LV is a REAL block device: a loop device over its PV at
  pe_start + first extent × extent size, limited to the LV size, read-only when
  activated so; `/dev/mapper/<vg>-<lv>` (dashes doubled, a block node of that loop
  device) and `/dev/<vg>/<lv>` (a symlink to it) are created and removed on
  deactivation. Writes land on the PV, so they survive deactivate/activate and are seen
  by every node sharing the PV. LVs of several segments, striped, raid, thin and other
  non-linear LVs cannot be mapped by a loop device and are refused with an explicit
  `xenha-sim:` message (rc 5); a partial LV activated with `--activationmode partial`
  likewise (there is no error target to map the missing part).
- Reports: `lvs` output (JSON, table, --noheadings/--separator, --nameprefixes, with or
  without the extra top-level "log") gets the values of a real host for lv_attr chars
  5-6 (`a`/`-`, `o`/`-`, `I` for an invalid snapshot), lv_active, lv_active_locally/
  remotely/exclusively, lv_device_open, lv_suspended, lv_live_table, lv_inactive_table,
  lv_permissions, lv_kernel_major/minor/read_ahead, snap_percent/data_percent,
  lv_snapshot_invalid and lv_merge_failed. When the user's -o lacks what identifies a
  row, the simulator adds lv_uuid/lv_attr to the real call and removes them from what it
  prints. `-S` selections naming those fields are evaluated by the simulator
  (`xenha_lab.sim.lvm.selection`). `lvdisplay` and `lvscan` show LV Status/# open/Block device
  and ACTIVE like a real host; `vgdisplay` its Open LV count.
- Snapshots (old-style COW, which lvm2 refuses without device-mapper: `Can't create
  snapshot without using device-mapper kernel driver.`): see `xenha_lab.sim.lvm.snapshot`.
- lvremove of an active LV asks `Do you really want to remove active logical volume
  vg/lv? [y/n]:` unless -f/-y, refuses an open one, and removes its device; lvrename,
  vgrename and lvextend/lvreduce/lvresize keep an active LV's device in step.

Not simulated: lvmlockd/clvmd and cluster locking, thin/cache/raid/mirror/vdo LVs,
`lvm fullreport` rewriting, sorting (-O) by rewritten fields, `--rows` rewriting,
lvmconfig showing `activation=0` (it reports the configuration in force),
`lvmpolld` (merges complete at once).

Modules, each importing only those listed after it: this command front end (and
`dmsetup`'s); `report` (lvs and the display commands) and `snapshot_commands`
(lvcreate -s, lvconvert --merge); `activation` (the engine); `snapshot` (COW data and
merges); `mapping` (an LV as a mapped device); `runner` (the real lvm2) and `cmdline`;
`devmapper` (the device-mapper layer, which knows nothing of LVM); `state` (per node,
env XENHA_SIM_LVM_STATE; who holds a device open comes from `xenha_lab.sim.holders`),
`metadata` (the VG text format), `selection` (-S).
"""

from __future__ import annotations

import os
import re
import sys

from xenha_lab.sim.lvm import report, snapshot, snapshot_commands
from xenha_lab.sim.lvm import state as st
from xenha_lab.sim.lvm.activation import Activator, as_list, passes_volume_list, reconcile
from xenha_lab.sim.lvm.cmdline import (ACTIVATE_VALUES, Output, activate_value, activation_mode, ask, has_flag,
                                       normalize_mode, option_value, positionals)
from xenha_lab.sim.lvm.runner import count_config, lvm_binary, passthrough, report_json, run_lvm, split_config

# Commands the Makefile installs as launchers of this module.
COMMANDS = (
    "lvm lvs vgs pvs lvchange vgchange lvcreate lvremove lvconvert lvextend lvreduce "
    "lvresize lvrename vgrename vgremove vgcfgbackup vgcfgrestore lvmconfig lvmdump "
    "lvdisplay lvscan vgdisplay pvdisplay pvcreate pvremove pvchange pvscan pvresize "
    "vgcreate vgextend vgreduce vgexport vgimport vgscan vgck vgmknodes lvmdiskscan "
    "lvmsadc lvmsar pvck pvmove lvmdevices vgimportdevices vgsplit vgmerge vgconvert"
).split()


# --- commands ---------------------------------------------------------------------
def cmd_lvchange(command: str, args) -> int:
    value = activate_value(args)
    if value is None or count_config(args) > 1:
        return passthrough(command, args)
    rest, user_config = split_config(args)
    out = Output()
    proc = run_lvm(command, rest, user_config, stdin=sys.stdin)
    mode = normalize_mode(value)
    activator = Activator(out, user_config, activation_mode(rest), has_flag(rest, "-K", "--ignoreactivationskip"),
                          has_flag(rest, "-t", "--test"))
    rc = proc.returncode
    if mode not in ACTIVATE_VALUES:
        sys.stderr.write(proc.stderr)
        sys.stdout.write(proc.stdout)
        return rc
    sys.stderr.write(proc.stderr)
    if rc in (0, 5):
        targets = activator.resolve(positionals(rest), option_value(rest, "-S", "--select"))
        for vg_name, lv_name in targets:
            if mode.endswith("n"):
                activator.deactivate(vg_name, lv_name)
            else:
                activator.activate(vg_name, lv_name, mode)
        if activator.failed:
            rc = max(rc, 5)
    out.flush()
    sys.stdout.write(proc.stdout)
    return rc


NOW_ACTIVE = re.compile(r'^(\s*)(\d+)( logical volume\(s\) in volume group "(.*)" now active)$')


def cmd_vgchange(command: str, args) -> int:
    value = activate_value(args)
    if value is None or count_config(args) > 1:
        rc = passthrough_tracking(command, args)
        return rc
    rest, user_config = split_config(args)
    out = Output()
    mode = normalize_mode(value)
    activator = Activator(out, user_config, activation_mode(rest), has_flag(rest, "-K", "--ignoreactivationskip"),
                          has_flag(rest, "-t", "--test"))
    vg_names = [v for v in positionals(rest)]
    # lvm2 refuses to deactivate a VG with open LVs before touching anything
    blocked = set()
    if mode.endswith("n"):
        for vg_name in resolve_vgs(vg_names, user_config):
            vg = activator.vg(vg_name)
            if vg is None:
                continue
            open_lvs = []
            for lv in vg.lvs.values():
                record = activator.state.by_lv_uuid(lv.id)
                if record is not None and vg.is_visible(lv) and activator.state.holders_of(record):
                    open_lvs.append((lv, record))
            if open_lvs:
                lv, record = open_lvs[0]
                if not activator.check_not_in_use(record, "%s/%s" % (vg.name, lv.name)):
                    activator.fail('Can\'t deactivate volume group "%s" with %d open logical volume(s)'
                                   % (vg.name, len(open_lvs)))
                    blocked.add(vg.name)
    proc = run_lvm(command, rest, user_config, stdin=sys.stdin)
    rc = proc.returncode
    sys.stderr.write(proc.stderr)
    if rc in (0, 5):
        for vg_name in resolve_vgs(vg_names, user_config):
            if vg_name in blocked:
                continue
            vg = activator.vg(vg_name)
            if vg is None:
                continue
            expected = ok = 0
            for lv in list(vg.lvs.values()):
                if not lv.visible or vg.cow_segment(lv.name)[1] is not None:
                    continue
                expected += 1
                if mode.endswith("n"):
                    ok += activator.deactivate(vg_name, lv.name)
                else:
                    ok += activator.activate(vg_name, lv.name, mode)
            if ok != expected:
                activator.failed = True
    if activator.failed:
        rc = max(rc, 5)
    out.flush()
    lines = []
    for line in proc.stdout.splitlines(keepends=True):
        match = NOW_ACTIVE.match(line.rstrip("\n"))
        if match:
            vg = activator.vg(match.group(4), refresh=True)
            count = activator.active_count(vg) if vg is not None else 0
            line = "%s%d%s\n" % (match.group(1), count, match.group(3))
        lines.append(line)
    sys.stdout.write("".join(lines))
    return rc


def resolve_vgs(names, user_config=None):
    """VG names the way vgchange resolves them (all VGs when none is given; @tags)."""
    rows, _ = report_json("vgs", ["-o", "vg_name", *names], user_config)
    return [r.get("vg_name", "") for r in rows]


def passthrough_tracking(command: str, args) -> int:
    """Run a metadata command, then bring this node's devices in line with it (renames,
    removals, resizes of active LVs)."""
    state = st.NodeState()
    before = {r["uuid"]: r for r in state.devices()}
    rc = passthrough(command, args)
    if before:
        _, user_config = split_config(args)
        reconcile(state, before, user_config)
    return rc


# --- lvcreate ---------------------------------------------------------------------
CREATED = re.compile(r'^\s*Logical volume "(.+)" created\.$')


def cmd_lvcreate(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    rest, user_config = split_config(args)
    if snapshot_commands.is_snapshot_request(rest):
        return snapshot_commands.cmd_lvcreate_snapshot(rest, user_config)
    value = activate_value(rest)
    mode = normalize_mode(value) if value else "y"
    zero = (option_value(rest, "-Z", "--zero") or "y").lower().startswith("y")
    test = has_flag(rest, "-t", "--test")
    extra = ("WARNING: Skipping zeroing and wipping, compiled without activation support.",)
    proc = run_lvm(command, rest, user_config, stdin=sys.stdin, extra_noise=extra)
    rc = proc.returncode
    err_text = proc.stderr
    out = Output()
    created = None
    for line in proc.stdout.splitlines():
        match = CREATED.match(line)
        if match:
            created = match.group(1)
    if rc == 0 and created and not test and mode not in ("n", "en", "ln", "sn"):
        vg_name = lvcreate_vg(rest)
        activator = Activator(out, user_config, activation_mode(rest))
        vg = activator.vg(vg_name) if vg_name else None
        lv = vg.lvs.get(created) if vg else None
        if vg is not None and lv is not None:
            not_zeroed = "WARNING: Logical volume %s/%s not zeroed." % (vg.name, lv.name)
            if zero:
                err_text = "".join(l for l in err_text.splitlines(keepends=True) if l.strip() != not_zeroed)
            passes = passes_volume_list(as_list(activator.config.get("activation/volume_list")), vg, lv)
            if not passes:
                if zero:
                    sys.stderr.write(err_text)
                    run_lvm("lvremove", ["-f", "%s/%s" % (vg.name, lv.name)], user_config)
                    sys.stderr.write('  Volume "%s/%s" is not active locally (volume_list activation '
                                     'filter?).\n  Aborting. Failed to wipe start of new LV.\n'
                                     % (vg.name, lv.name))
                    return 5
            elif activator.activate(vg.name, lv.name, mode):
                record = activator.state.by_lv_uuid(lv.id)
                if record and zero:
                    zero_start(record["dev"])
            else:
                rc = 5
    sys.stderr.write(err_text)
    out.flush()
    sys.stdout.write(proc.stdout)
    return rc


def lvcreate_vg(args):
    name = option_value(args, "-n", "--name") or ""
    if "/" in name:
        return name.split("/")[0]
    for arg in positionals(args):
        if arg.startswith("/dev/"):
            continue
        return arg.split("/")[0]
    return None


def zero_start(dev: str):
    """lvcreate wipes the first 4 KiB of a new LV (lib/metadata/lv_manip.c wipe_lv)."""
    fd = os.open(dev, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\0" * 4096, 0)
        os.fsync(fd)
    finally:
        os.close(fd)


# --- lvremove ---------------------------------------------------------------------
def cmd_lvremove(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    rest, user_config = split_config(args)
    state = st.NodeState()
    if not state.devices():
        return passthrough(command, args)
    out = Output()
    activator = Activator(out, user_config)
    force = has_flag(rest, "-f", "--force")
    yes = has_flag(rest, "-y", "--yes")
    targets = activator.resolve(positionals(rest), option_value(rest, "-S", "--select"))
    keep = []
    for vg_name, lv_name in targets:
        vg = activator.vg(vg_name)
        if vg is None or lv_name not in vg.lvs:
            continue
        lv = vg.lvs[lv_name]
        record = state.by_lv_uuid(lv.id)
        if record is None:
            continue
        display = "%s/%s" % (vg_name, lv_name)
        if not activator.check_not_in_use(record, display):
            keep.append(lv_name)
            continue
        if not force and not yes:
            prompt = "Do you really want to remove active logical volume %s? [y/n]: " % display
            answer = ask(prompt)
            if answer != "y":
                out.print('Logical volume "%s" not removed.' % lv_name)
                keep.append(lv_name)
                continue
    if keep:
        out.flush()
        remaining = [f"{v}/{l}" for v, l in targets if l not in keep]
        if not remaining:
            return 5
        rest = [a for a in rest if a not in positionals(rest)] + remaining
    rest = [a for a in rest if a not in ("-y", "--yes")]
    if "-f" not in rest and "--force" not in rest:
        rest.append("-f")
    before = {r["uuid"]: r for r in state.devices()}
    proc = run_lvm(command, rest, user_config, stdin=sys.stdin)
    out.flush()
    sys.stderr.write(proc.stderr)
    sys.stdout.write(proc.stdout)
    reconcile(state, before, user_config)
    snapshot.collect_garbage(user_config)
    return 5 if keep and proc.returncode == 0 else proc.returncode


# --- lvconvert --------------------------------------------------------------------
def cmd_lvconvert(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    rest, user_config = split_config(args)
    if has_flag(rest, "--merge", "--mergesnapshot"):
        return snapshot_commands.cmd_merge(rest, user_config)
    return passthrough_tracking(command, args)


# --- reports ----------------------------------------------------------------------
def cmd_lvs(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    return report.lvs(command, args)


def cmd_lvdisplay(command: str, args) -> int:
    return report.lvdisplay(command, args)


def cmd_lvscan(command: str, args) -> int:
    return report.lvscan(command, args)


def cmd_vgdisplay(command: str, args) -> int:
    return report.vgdisplay(command, args)


HANDLERS = {
    "lvchange": cmd_lvchange,
    "vgchange": cmd_vgchange,
    "lvcreate": cmd_lvcreate,
    "lvremove": cmd_lvremove,
    "lvconvert": cmd_lvconvert,
    "lvs": cmd_lvs,
    "lvdisplay": cmd_lvdisplay,
    "lvscan": cmd_lvscan,
    "vgdisplay": cmd_vgdisplay,
    "lvrename": passthrough_tracking,
    "vgrename": passthrough_tracking,
    "lvextend": passthrough_tracking,
    "lvreduce": passthrough_tracking,
    "lvresize": passthrough_tracking,
    "vgremove": passthrough_tracking,
    "vgcfgrestore": passthrough_tracking,
}


def main(argv=None) -> int:
    prog = os.path.basename(sys.argv[0]) if argv is None else "lvm"
    args = list(sys.argv[1:] if argv is None else argv)
    if prog not in COMMANDS or prog == "lvm":
        if not args or args[0].startswith("-"):
            os.execv(lvm_binary(), [lvm_binary(), *args])
        prog, args = args[0], args[1:]
    handler = HANDLERS.get(prog)
    try:
        if handler is None:
            return passthrough(prog, args)
        return handler(prog, args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
