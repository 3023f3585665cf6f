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
  (`xenha_lab.sim.lvm.lvm_select`). `lvdisplay` and `lvscan` show LV Status/# open/Block device
  and ACTIVE like a real host; `vgdisplay` its Open LV count.
- Snapshots (old-style COW, which lvm2 refuses without device-mapper: `Can't create
  snapshot without using device-mapper kernel driver.`): see `xenha_lab.sim.lvm.lvm_snap`.
- lvremove of an active LV asks `Do you really want to remove active logical volume
  vg/lv? [y/n]:` unless -f/-y, refuses an open one, and removes its device; lvrename,
  vgrename and lvextend/lvreduce/lvresize keep an active LV's device in step.

Not simulated: lvmlockd/clvmd and cluster locking, thin/cache/raid/mirror/vdo LVs,
`lvm fullreport` rewriting, sorting (-O) by rewritten fields, `--rows` rewriting,
lvmconfig showing `activation=0` (it reports the configuration in force),
`lvmpolld` (merges complete at once).

State: `xenha_lab.sim.lvm.lvm_state` (per node, env XENHA_SIM_LVM_STATE) and the holders
registry (env XENHA_SIM_HOLDERS).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time

from xenha_lab.sim.lvm import lvm_meta
from xenha_lab.sim.lvm import lvm_state as st

LVM_CANDIDATES = ("/usr/sbin/lvm", "/sbin/lvm")
LOSETUP_CANDIDATES = ("/usr/sbin/losetup", "/sbin/losetup")
FORCED_CONFIG = "global/activation=0"

NOISE = (
    "WARNING: Activation disabled. No device-mapper interaction will be attempted.",
    "/dev/mapper/control: open failed: No such device",
    "Failure to communicate with kernel device-mapper driver.",
    "Check that device-mapper is available in the kernel.",
    "WARNING: Ignoring duplicate config value: global/activation",
    "WARNING: Ignoring duplicate config value: activation",
)
NOISE_PREFIXES = (
    "Incompatible libdevmapper ",
    "WARNING: Failed to check for active volumes in volume group",
    "/sbin/modprobe",
)

OPEN_COUNT_CHECK_RETRIES = 25          # lib/activate/activate.c
OPEN_COUNT_CHECK_USLEEP_DELAY = 0.2

# Commands the Makefile installs as launchers of this module.
COMMANDS = (
    "lvm lvs vgs pvs lvchange vgchange lvcreate lvremove lvconvert lvextend lvreduce "
    "lvresize lvrename vgrename vgremove vgcfgbackup vgcfgrestore lvmconfig lvmdump "
    "lvdisplay lvscan vgdisplay pvdisplay pvcreate pvremove pvchange pvscan pvresize "
    "vgcreate vgextend vgreduce vgexport vgimport vgscan vgck vgmknodes lvmdiskscan "
    "lvmsadc lvmsar pvck pvmove lvmdevices vgimportdevices vgsplit vgmerge vgconvert"
).split()


class Exit(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def find_binary(candidates) -> str:
    for path in candidates:
        if os.path.exists(path):
            return path
    raise FileNotFoundError(candidates[0])


def lvm_binary() -> str:
    return os.environ.get("XENHA_SIM_REAL_LVM") or find_binary(LVM_CANDIDATES)


# --- output --------------------------------------------------------------------------
class Output:
    """Collected output of one wrapped command, written at the end (stderr first)."""

    def __init__(self):
        self.out: list[str] = []
        self.err: list[str] = []

    def error(self, text: str):
        for line in text.splitlines():
            self.err.append("  " + line + "\n")

    def print(self, text: str):
        for line in text.splitlines():
            self.out.append("  " + line + "\n")

    def flush(self):
        if self.err:
            sys.stderr.write("".join(self.err))
            sys.stderr.flush()
            self.err = []
        if self.out:
            sys.stdout.write("".join(self.out))
            sys.stdout.flush()
            self.out = []


def filter_stderr(text: str, extra=()) -> str:
    kept = []
    for line in text.splitlines(keepends=True):
        bare = line.strip()
        if bare in NOISE or bare.startswith(NOISE_PREFIXES) or bare in extra:
            continue
        kept.append(line)
    return "".join(kept)


# --- running the real lvm ------------------------------------------------------------
def split_config(args):
    """(args without --config, the user's --config value or None)."""
    rest, config, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            config = args[i + 1] if config is None else config + " " + args[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            value = arg[len("--config="):]
            config = value if config is None else config + " " + value
            i += 1
            continue
        rest.append(arg)
        i += 1
    return rest, config


def count_config(args) -> int:
    return sum(1 for a in args if a == "--config" or a.startswith("--config="))


def merged_config(user_config):
    return FORCED_CONFIG if not user_config else user_config + " " + FORCED_CONFIG


def run_lvm(command: str, args, user_config=None, input_text=None, stdin=None,
            extra_noise=()) -> subprocess.CompletedProcess:
    """The real `lvm COMMAND ARGS --config '<user> global/activation=0'`."""
    argv = [lvm_binary(), command, *args, "--config", merged_config(user_config)]
    env = dict(os.environ)
    env.setdefault("LVM_SUPPRESS_FD_WARNINGS", "1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          input=input_text, stdin=None if input_text is not None else stdin)
    proc.stderr = filter_stderr(proc.stderr, extra_noise)
    return proc


def passthrough(command: str, args) -> int:
    if count_config(args) > 1:
        # let the real tool say `Option --config may not be repeated.`
        argv = [lvm_binary(), command, *args]
        proc = subprocess.run(argv, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(filter_stderr(proc.stderr))
        return proc.returncode
    rest, user_config = split_config(args)
    proc = run_lvm(command, rest, user_config, stdin=sys.stdin)
    sys.stderr.write(proc.stderr)
    sys.stdout.write(proc.stdout)
    return proc.returncode


def report_json(command: str, args, user_config=None):
    """Rows of a real JSON report (first report section) and the process."""
    proc = run_lvm(command, ["--reportformat", "json", *args], user_config)
    rows = []
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
        for section in data.get("report", []):
            for rows_ in section.values():
                rows.extend(rows_)
    except ValueError:
        pass
    return rows, proc


def vg_metadata(vg_name: str, user_config=None) -> lvm_meta.VG | None:
    """The VG's metadata as real lvm2 has it (vgcfgbackup to a private file)."""
    fd, path = tempfile.mkstemp(prefix="xenha-sim-vg-", suffix=".vg")
    os.close(fd)
    try:
        proc = run_lvm("vgcfgbackup", ["-f", path, vg_name], user_config)
        if proc.returncode != 0:
            return None
        with open(path, encoding="utf-8") as handle:
            return lvm_meta.VG(lvm_meta.parse(handle.read()))
    except (OSError, ValueError):
        return None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def config_values(user_config=None) -> dict:
    """activation/* settings and global/locking_dir in force for this command."""
    argv = [lvm_binary(), "lvmconfig", "--mergedconfig", "--config", merged_config(user_config),
            "activation", "global/locking_dir"]
    proc = subprocess.run(argv, capture_output=True, text=True,
                          env={**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"})
    values: dict = {}
    try:
        root = lvm_meta.parse(proc.stdout)
    except (ValueError, IndexError):
        return values
    activation = root.section("activation")
    if activation is not None:
        for key, value in activation.items:
            values["activation/" + key] = value
    if root.get("locking_dir") is not None:
        values["global/locking_dir"] = root.get("locking_dir")
    return values


def as_list(value):
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def passes_volume_list(items, vg: lvm_meta.VG, lv: lvm_meta.LV) -> bool:
    """lvm.conf activation/volume_list semantics: "vg", "vg/lv", "@tag" (LV or VG
    tag); undefined passes everything, an empty list nothing."""
    if items is None:
        return True
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item.startswith("@"):
            tag = item[1:]
            if tag == "*":
                continue          # host tags are not simulated
            if tag in lv.tags or tag in vg.tags:
                return True
            continue
        if "/" in item:
            vg_name, _, lv_name = item.partition("/")
            if vg_name == vg.name and lv_name == lv.name:
                return True
            continue
        if item == vg.name:
            return True
    return False


# --- devices -------------------------------------------------------------------------
def losetup(*args) -> str:
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


class SimRefusal(Exception):
    """Activation refused by the simulator (text already worded for the user)."""


def linear_area(vg: lvm_meta.VG, lv: lvm_meta.LV):
    """(pv, first extent, extent count) of an LV mappable by one loop device."""
    areas = []
    for seg in lv.segments:
        if seg.type not in ("striped", "linear") or seg.stripe_count != 1:
            raise SimRefusal("xenha-sim: %s/%s is a %s LV; the simulator maps only linear LVs "
                             "(no device-mapper)." % (vg.name, lv.name, seg.type))
        (pv_key, pe), = seg.areas()
        if areas and areas[-1][0] == pv_key and areas[-1][1] + areas[-1][2] == pe:
            areas[-1] = (pv_key, areas[-1][1], areas[-1][2] + seg.extent_count)
        else:
            areas.append((pv_key, pe, seg.extent_count))
    if len(areas) != 1:
        raise SimRefusal("xenha-sim: %s/%s has %d segments on its PVs; the simulator maps only "
                         "LVs of one contiguous area (no device-mapper)." % (vg.name, lv.name, len(areas)))
    pv_key, pe, count = areas[0]
    pv = vg.pvs[pv_key]
    return pv, pe, count


def create_lv_device(state: st.NodeState, vg: lvm_meta.VG, lv: lvm_meta.LV, mode: str, read_only: bool):
    pv, pe, count = linear_area(vg, lv)
    if pv.missing or not pv.device.startswith("/"):
        raise SimRefusal("xenha-sim: the PV of %s/%s is missing." % (vg.name, lv.name))
    offset_sectors = pv.pe_start + pe * vg.extent_size
    sectors = count * vg.extent_size
    args = ["--find", "--show", "--offset", str(offset_sectors * 512), "--sizelimit", str(sectors * 512)]
    if read_only:
        args.append("--read-only")
    dev = losetup(*args, pv.device)
    set_read_ahead(dev)
    major, minor = block_numbers(dev)
    pv_major, pv_minor = block_numbers(pv.device)
    try:
        links = make_links(state, vg.name, lv.name, "", major, minor)
    except OSError:
        detach_loop(dev)
        raise
    record = {
        "name": st.dm_name(vg.name, lv.name), "uuid": st.dm_uuid(vg.id, lv.id),
        "vg": vg.name, "lv": lv.name, "layer": "", "vg_uuid": vg.id, "lv_uuid": lv.id,
        "kind": "linear", "dev": dev, "major": str(major), "minor": str(minor),
        "sectors": str(sectors),
        "table": "0 %d linear %d:%d %d" % (sectors, pv_major, pv_minor, offset_sectors),
        "ro": "1" if read_only else "0", "mode": mode, "links": ",".join(links), "events": "0",
    }
    state.put(record)
    return record


# --- the activation engine -------------------------------------------------------------
class Activator:
    """Applies activation changes on this node after the real command validated them."""

    def __init__(self, out: Output, user_config=None, activation_mode: str = "complete",
                 ignore_skip: bool = False, test: bool = False):
        self.out = out
        self.user_config = user_config
        self.mode_partial = activation_mode == "partial"
        self.ignore_skip = ignore_skip
        self.test = test
        self.state = st.NodeState()
        self._config = None
        self._vgs: dict[str, lvm_meta.VG | None] = {}
        self.failed = False

    @property
    def config(self):
        if self._config is None:
            self._config = config_values(self.user_config)
        return self._config

    def vg(self, name: str, refresh: bool = False):
        if refresh or name not in self._vgs:
            self._vgs[name] = vg_metadata(name, self.user_config)
        return self._vgs[name]

    def fail(self, text: str):
        self.out.error(text)
        self.failed = True

    # targets ---------------------------------------------------------------------------
    def resolve(self, positional, select=None):
        """[(vg name, lv name)] the real lvs resolves from the command's arguments."""
        args = ["-a", "-o", "vg_name,lv_name"]
        if select:
            args += ["--select", select]
        rows, _ = report_json("lvs", args + list(positional), self.user_config)
        return [(r.get("vg_name", ""), r.get("lv_name", "")) for r in rows]

    # activation ------------------------------------------------------------------------
    def activate(self, vg_name: str, lv_name: str, mode: str) -> bool:
        vg = self.vg(vg_name)
        if vg is None or lv_name not in vg.lvs:
            return True
        lv = vg.lvs[lv_name]
        _, snap_seg = vg.cow_segment(lv.name)
        if snap_seg is not None:                 # a snapshot activates with its origin
            lv = vg.lvs.get(snap_seg.origin, lv)
        elif not lv.visible:
            return True
        if self.state.by_lv_uuid(lv.id):
            return True
        if not self.ignore_skip and ("ACTIVATION_SKIP" in lv.status or "ACTIVATION_SKIP" in lv.flags):
            return True
        cfg = self.config
        if mode == "ay":
            if "NOAUTOACTIVATE" in vg.flags or "NOAUTOACTIVATE" in lv.flags:
                return True
            if not passes_volume_list(as_list(cfg.get("activation/auto_activation_volume_list")), vg, lv):
                return True
        if not passes_volume_list(as_list(cfg.get("activation/volume_list")), vg, lv):
            return True                          # silently (log_verbose in lvm2)
        involved = [lv] + [vg.lvs[s.cow_store or s.merging_store] for _, s in vg.snapshots_of(lv.name)
                           if (s.cow_store or s.merging_store) in vg.lvs]
        if any(vg.is_partial(x) for x in involved):
            if not self.mode_partial:
                self.fail("Refusing activation of partial LV %s/%s.  Use '--activationmode partial' "
                          "to override." % (vg.name, lv.name))
                return False
            self.fail("xenha-sim: cannot map the missing parts of %s/%s without device-mapper "
                      "(partial activation is not simulated)." % (vg.name, lv.name))
            return False
        if self.test:
            return True
        read_only = (not lv.writable) or passes_volume_list(
            as_list(cfg.get("activation/read_only_volume_list")) or [], vg, lv)
        from xenha_lab.sim.lvm import lvm_snap

        try:
            with self.state:
                merging = [(s_lv, s) for s_lv, s in vg.snapshots_of(lv.name) if s.merging_store]
                if merging:
                    vg = lvm_snap.finish_merge(self, vg, lv, merging[0][1])
                    lv = vg.lvs[lv.name]
                create_lv_device(self.state, vg, lv, mode, read_only)
                lvm_snap.activate_snapshots(self, vg, lv, mode)
        except SimRefusal as refusal:
            self.fail(str(refusal))
            return False
        except OSError as error:
            self.fail("xenha-sim: activation of %s/%s failed: %s" % (vg.name, lv.name, error))
            return False
        return True

    # deactivation ----------------------------------------------------------------------
    def retry_deactivation(self) -> bool:
        return str(self.config.get("activation/retry_deactivation", 1)) != "0"

    def check_not_in_use(self, record, display: str, error_if_used: bool = True) -> bool:
        """lv_check_not_in_use(): holders first, then the open count with retries."""
        holders = self.state.holders_of(record)
        if not holders:
            return True
        if any(st.is_block_holder(h) for h in holders):
            if error_if_used:
                self.fail("Logical volume %s is used by another device." % display)
            return False
        retries = OPEN_COUNT_CHECK_RETRIES if self.retry_deactivation() else 1
        while retries > 0:
            retries -= 1
            if not self.state.holders_of(record):
                return True
            if retries == 0:
                break
            time.sleep(OPEN_COUNT_CHECK_USLEEP_DELAY)
        if error_if_used:
            self.fail("Logical volume %s in use." % display)
        return False

    def deactivate(self, vg_name: str, lv_name: str) -> bool:
        vg = self.vg(vg_name)
        if vg is None or lv_name not in vg.lvs:
            return True
        lv = vg.lvs[lv_name]
        _, snap_seg = vg.cow_segment(lv.name)
        if snap_seg is not None:
            lv = vg.lvs.get(snap_seg.origin, lv)
        record = self.state.by_lv_uuid(lv.id)
        if record is None:
            return True
        display = "%s/%s" % (vg.name, lv.name)
        if not self.check_not_in_use(record, display):
            return False
        snaps = [r for r in self.state.devices() if r.get("origin_uuid") == lv.id]
        open_snaps = [r for r in snaps if self.state.holders_of(r)]
        if open_snaps:
            self.fail("LV %s has open %d snapshot(s), not deactivating." % (display, len(open_snaps)))
            return False
        if self.test:
            return True
        with self.state:
            for snap in snaps:
                remove_device(self.state, snap)
            remove_device(self.state, record)
        return True

    def active_count(self, vg: lvm_meta.VG) -> int:
        ids = {r.get("lv_uuid") for r in self.state.devices() if r.get("vg_uuid") == vg.id}
        return sum(1 for lv in vg.lvs.values() if vg.is_visible(lv) and lv.id in ids)


# --- argument helpers ----------------------------------------------------------------
ACTIVATE_VALUES = ("y", "n", "ey", "en", "ly", "ln", "sy", "sn", "ay")
VALUE_OPTIONS = {
    # options that take a value, so that positional arguments are told apart
    "-a", "--activate", "--activationmode", "-S", "--select", "--config", "--addtag",
    "--deltag", "-o", "--options", "-O", "--sort", "--separator", "--units", "-L", "--size",
    "-l", "--extents", "-n", "--name", "-s", "--snapshot", "-c", "--chunksize", "-p",
    "--permission", "-r", "--readahead", "-C", "--contiguous", "--alloc", "-i", "--stripes",
    "-I", "--stripesize", "-m", "--mirrors", "--type", "-V", "--virtualsize", "-Z", "--zero",
    "-W", "--wipesignatures", "--reportformat", "--profile", "--commandprofile",
    "--metadataprofile", "-M", "--persistent", "--major", "--minor", "--setautoactivation",
    "--systemid", "-x", "--resizeable", "-u", "--uuid", "--monitor", "--poll",
    "--errorwhenfull", "--discards", "--cachemode", "--cachepolicy", "--cachesettings",
    "--headings", "--configreport", "--logonly", "--devices", "--devicesfile", "--nolocking",
    "--lockopt", "--driverloaded", "--vgmetadatacopies", "--metadatacopies", "--pvmetadatacopies",
    "-A", "--autobackup", "--locktype", "--lock-type", "--setactivationskip", "-k", "--regionsize",
    "-R", "--raidintegrity", "--ignoremonitoring",
}
# options whose value is optional/glued in lvm's syntax are treated as flags here
FLAG_ONLY = {"--nolocking", "-s", "--snapshot", "-C", "-A", "-k", "-M", "-x", "-r", "-R", "-p", "-u"}


def activate_value(args):
    """The -a/--activate value of an lvchange/vgchange/lvcreate command line, or None."""
    value = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-a", "--activate") and i + 1 < len(args):
            value = args[i + 1]
            i += 2
            continue
        if arg.startswith("--activate="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-a") and not arg.startswith("--") and len(arg) > 2:
            value = arg[2:]
        i += 1
    return value


def option_value(args, *names):
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif name.startswith("--") and arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
            elif not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                value = arg[len(name):]
    return value


def has_flag(args, *names):
    for arg in args:
        if arg in names:
            return True
        for name in names:
            if len(name) == 2 and not name.startswith("--") and arg.startswith("-") \
                    and not arg.startswith("--") and name[1] in arg[1:] and _is_flag_cluster(arg):
                return True
    return False


def _is_flag_cluster(arg: str) -> bool:
    # "-fy", "-vf": clusters of single-letter flags without values
    return all(ch in "fyvqtKPd" for ch in arg[1:])


def positionals(args):
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            if "=" in arg or arg in FLAG_ONLY:
                i += 1
                continue
            if arg in VALUE_OPTIONS:
                i += 2
                continue
            i += 1
            continue
        out.append(arg)
        i += 1
    return out


def activation_mode(args) -> str:
    mode = option_value(args, "--activationmode") or "complete"
    if has_flag(args, "-P", "--partial"):
        mode = "partial"
    return mode


def normalize_mode(value: str) -> str:
    value = value.lower()
    return {"e": "ey", "s": "sy", "l": "ly", "a": "ay"}.get(value, value)


# --- commands ------------------------------------------------------------------------
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


def reconcile(state: st.NodeState, before: dict, user_config=None):
    """Follow real metadata changes of LVs that are active here."""
    by_vg: dict[str, list] = {}
    for record in before.values():
        by_vg.setdefault(record.get("vg_uuid", ""), []).append(record)
    rows, _ = report_json("vgs", ["-o", "vg_name,vg_uuid"], user_config)
    names = {r.get("vg_uuid", "").replace("-", ""): r.get("vg_name") for r in rows}
    from xenha_lab.sim.lvm import lvm_snap

    with state:
        for vg_uuid, records in by_vg.items():
            vg_name = names.get(vg_uuid.replace("-", ""))
            vg = vg_metadata(vg_name, user_config) if vg_name else None
            if vg is None:
                # the VG is gone or foreign now: a real host would keep the devices
                # of a foreign VG; only a removed VG takes them away
                if vg_name is None and not rows_contain_foreign(vg_uuid, user_config):
                    for record in records:
                        remove_device(state, record)
                continue
            for record in records:
                current = state.get(record["uuid"])
                if current is None:
                    continue
                lv = vg.lv_by_id(current.get("lv_uuid", ""))
                if lv is None:
                    remove_device(state, current)
                    lvm_snap.forget(current)
                    continue
                if lv.name != current.get("lv") or vg.name != current.get("vg"):
                    rename_device(state, current, vg.name, lv.name)
                    current = state.get(record["uuid"]) or current
                if current.get("kind") == "linear":
                    resize_device(state, vg, lv, current)


def rows_contain_foreign(vg_uuid: str, user_config=None) -> bool:
    rows, _ = report_json("vgs", ["--foreign", "-o", "vg_uuid"], user_config)
    return any(r.get("vg_uuid", "").replace("-", "") == vg_uuid.replace("-", "") for r in rows)


def rename_device(state: st.NodeState, record, vg_name: str, lv_name: str):
    remove_links(record)
    major, minor = int(record["major"]), int(record["minor"])
    record = dict(record)
    record["vg"], record["lv"] = vg_name, lv_name
    record["name"] = st.dm_name(vg_name, lv_name, record.get("layer", ""))
    record["links"] = ",".join(make_links(state, vg_name, lv_name, record.get("layer", ""), major, minor))
    state.put(record)


def resize_device(state: st.NodeState, vg: lvm_meta.VG, lv: lvm_meta.LV, record):
    sectors = lv.extents * vg.extent_size
    if str(sectors) == record.get("sectors"):
        return
    try:
        pv, pe, count = linear_area(vg, lv)
    except SimRefusal as refusal:
        sys.stderr.write("  %s The device keeps its old size.\n" % refusal)
        return
    offset = pv.pe_start + pe * vg.extent_size
    set_loop_geometry(record["dev"], offset * 512, sectors * 512)
    record = dict(record)
    pv_major, pv_minor = block_numbers(pv.device)
    record["sectors"] = str(sectors)
    record["table"] = "0 %d linear %d:%d %d" % (sectors, pv_major, pv_minor, offset)
    state.put(record)


def set_loop_geometry(dev: str, offset: int, sizelimit: int):
    """LOOP_GET_STATUS64 / LOOP_SET_STATUS64 with a new offset and size limit, then
    LOOP_SET_CAPACITY (what the kernel offers to resize a bound loop device)."""
    import fcntl
    import struct

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


# --- lvcreate --------------------------------------------------------------------------
CREATED = re.compile(r'^\s*Logical volume "(.+)" created\.$')


def cmd_lvcreate(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    rest, user_config = split_config(args)
    from xenha_lab.sim.lvm import lvm_snap

    if lvm_snap.is_snapshot_request(rest):
        return lvm_snap.cmd_lvcreate_snapshot(rest, user_config)
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


# --- lvremove ------------------------------------------------------------------------
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
    from xenha_lab.sim.lvm import lvm_snap

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
    lvm_snap.collect_garbage(activator)
    return 5 if keep and proc.returncode == 0 else proc.returncode


def ask(prompt: str) -> str:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline() if sys.stdin and not sys.stdin.closed else ""
    answer = line.strip().lower()[:1]
    if not line:
        sys.stdout.write("[n]\n")
        return "n"
    return answer


# --- lvconvert ------------------------------------------------------------------------
def cmd_lvconvert(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    rest, user_config = split_config(args)
    if has_flag(rest, "--merge", "--mergesnapshot"):
        from xenha_lab.sim.lvm import lvm_snap

        return lvm_snap.cmd_merge(rest, user_config)
    return passthrough_tracking(command, args)


# --- reports ---------------------------------------------------------------------------
def cmd_lvs(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    from xenha_lab.sim.lvm import lvm_report

    return lvm_report.lvs(command, args)


def cmd_lvdisplay(command: str, args) -> int:
    from xenha_lab.sim.lvm import lvm_report

    return lvm_report.lvdisplay(command, args)


def cmd_lvscan(command: str, args) -> int:
    from xenha_lab.sim.lvm import lvm_report

    return lvm_report.lvscan(command, args)


def cmd_vgdisplay(command: str, args) -> int:
    from xenha_lab.sim.lvm import lvm_report

    return lvm_report.vgdisplay(command, args)


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
