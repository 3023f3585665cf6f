"""A simulated `dmsetup` (device-mapper 1.02.185, Debian 12) answering from the
simulated activation state of this node (`xenha_lab.sim.lvm.state`, kept by the
device-mapper layer `xenha_lab.sim.lvm.devmapper`).

    dmsetup info [-c|-C|--columns] [--noheadings] [--noflush] [--separator S]
                 [-o [+]fields] [-S selection] [--nameprefixes] [--unquoted] [device]
    dmsetup ls [--target T]          dmsetup table|status [device] [--target T]
    dmsetup deps [device]            dmsetup remove [-f] device      dmsetup version
    dmsetup splitname name [LVM]     dmsetup mknodes|udevcomplete_all (no-ops)

Formats, from lvm2's libdm/dm-tools/dmsetup.c and libdm report code:
- columns (`info -c`) default to `name,major,minor,attr,open,segments,events,uuid`,
  headings `Name Maj Min Stat Open Targ Event UUID`, declared widths 16 3 3 4 4 4 6 32;
  numbers are right-aligned, strings left-aligned, every column padded to its width
  (the last one too) and joined by one space. `--noheadings` alone emulates the old
  dmsetup: no headings, unaligned, separator ":" (what ocf:heartbeat:LVM-activate's
  monitor parses). `--separator` turns alignment off. `--nameprefixes` prints
  `DM_NAME='…'` pairs.
- `attr` is live/inactive/suspended/read-only: `L--w` for an active read-write LV.
- "No devices found" is printed (stdout, rc 0) only when no mapped device exists at all;
  with devices present, a selection that matches none prints nothing.
- `info DEV`: the `Name: / State: / Read Ahead: / Tables present: / Open count: /
  Event number: / Major, minor: / Number of targets: / UUID:` block; a missing device:
  `Device does not exist.` and `Command failed.` on stderr, rc 1.
- `ls`: `name<TAB>(major:minor)`; `table`: `start length target params`, prefixed by
  `name: ` when listing all devices.

Simulation limits (say so rather than pretend):
- Major/minor are the loop device's (7:N) that really backs the LV, not a dm major: the
  numbers agree with `stat /dev/mapper/<name>`.
- Only the LV devices exist: snapshot stacks show the origin and the snapshot, without
  their `-real`/`-cow` layer devices; their tables are `linear` (origin) and
  `snapshot <origin> <pv> P <chunk>` approximations.
- Open count is the holders registry (`xenha_lab.sim.lvm.state`), not the kernel's count.

Fast path: this module imports only `os` and `sys` (plus the node state, the device-mapper
layer and the small selection parser, which import `os`); launchers run `python3 -IS`.
"""

import os
import sys

from xenha_lab.sim.lvm import devmapper, selection
from xenha_lab.sim.lvm import state as dm_state

LIBRARY_VERSION = "1.02.185 (2022-05-18)"
DRIVER_VERSION = "4.48.0"

# field id -> (heading, declared width, numeric)
FIELDS = {
    "name": ("Name", 16, False),
    "uuid": ("UUID", 32, False),
    "read_ahead": ("RAhead", 6, True),
    "attr": ("Stat", 4, False),
    "tables_loaded": ("Tables", 6, False),
    "suspended": ("Suspended", 9, False),
    "readonly": ("Read-only", 9, False),
    "devno": ("DevNo", 5, False),
    "major": ("Maj", 3, True),
    "minor": ("Min", 3, True),
    "open": ("Open", 4, True),
    "segments": ("Targ", 4, True),
    "events": ("Event", 6, True),
    "device_count": ("#Devs", 5, True),
    "devnos_used": ("DevNos", 6, False),
    "subsystem": ("Subsys", 6, False),
    "vg_name": ("VG", 4, False),
    "lv_name": ("LV", 4, False),
    "lv_layer": ("LVLayer", 7, False),
}
DEFAULT_OPTIONS = "name,major,minor,attr,open,segments,events,uuid"
SPLITNAME_OPTIONS = "vg_name,lv_name,lv_layer"


class Fail(Exception):
    def __init__(self, message="", code=1):
        super().__init__(message)
        self.message, self.code = message, code


def err(text):
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def row_of(state, record, registry):
    vg, lv, layer = (record.get("vg", ""), record.get("lv", ""), record.get("layer", ""))
    uuid = record.get("uuid", "")
    if not uuid.startswith("LVM-"):
        vg = lv = layer = ""
    ro = record.get("ro") == "1"
    major, minor = record.get("major", "0"), record.get("minor", "0")
    return {
        "name": record.get("name", ""),
        "uuid": uuid,
        "read_ahead": str(devmapper.read_ahead_sectors(record)),
        "attr": "L--" + ("r" if ro else "w"),
        "tables_loaded": "Live",
        "suspended": "Active",
        "readonly": "Read-only" if ro else "Writeable",
        "devno": "%s:%s" % (major, minor),
        "major": major,
        "minor": minor,
        "open": str(state.open_count(record, registry)),
        "segments": "1",
        "events": record.get("events", "0") or "0",
        "device_count": "1",
        "devnos_used": record.get("table", "").split(" ")[3] if record.get("table") else "",
        "subsystem": "LVM" if uuid.startswith("LVM-") else "",
        "vg_name": vg,
        "lv_name": lv,
        "lv_layer": layer,
    }


def parse_fields(options):
    if options.startswith("+"):
        options = DEFAULT_OPTIONS + "," + options[1:]
    fields = []
    for name in options.split(","):
        name = name.strip().lower()
        if not name:
            continue
        if name not in FIELDS:
            raise Fail("Unrecognised field: %s" % name)
        fields.append(name)
    return fields


def render(rows, fields, opts):
    """Lines of a libdm report (columns mode)."""
    headings = not opts["noheadings"]
    separator = " "
    aligned = True
    if opts["noheadings"]:
        separator, aligned = ":", False
    if opts["nameprefixes"]:
        aligned = False
    if opts["separator"] is not None:
        separator, aligned = opts["separator"], False
    lines = []
    if opts["nameprefixes"]:
        for row in rows:
            cells = []
            for f in fields:
                value = row[f]
                if not opts["unquoted"]:
                    value = "'%s'" % value
                cells.append("DM_%s=%s" % (f.upper(), value))
            lines.append(separator.join(cells))
        return lines
    widths = {}
    for f in fields:
        width = FIELDS[f][1]
        for row in rows:
            width = max(width, len(row[f]))
        widths[f] = width
    if headings and rows:
        if aligned:
            lines.append(separator.join(FIELDS[f][0].ljust(widths[f])[:widths[f]] for f in fields))
        else:
            lines.append(separator.join(FIELDS[f][0] for f in fields))
    for row in rows:
        cells = []
        for f in fields:
            value = row[f]
            if aligned:
                value = value.rjust(widths[f]) if FIELDS[f][2] else value.ljust(widths[f])
            cells.append(value)
        lines.append(separator.join(cells))
    return lines


def display_info(state, record, registry):
    ro = record.get("ro") == "1"
    lines = [
        "Name:              %s" % record.get("name", ""),
        "State:             ACTIVE%s" % (" (READ-ONLY)" if ro else ""),
        "Read Ahead:        %d" % devmapper.read_ahead_sectors(record),
        "Tables present:    LIVE",
        "Open count:        %d" % state.open_count(record, registry),
        "Event number:      %s" % (record.get("events", "0") or "0"),
        "Major, minor:      %s, %s" % (record.get("major", "0"), record.get("minor", "0")),
        "Number of targets: 1",
    ]
    if record.get("uuid"):
        lines.append("UUID: %s" % record["uuid"])
    return lines


def find_device(state, opts, name):
    devices = state.devices()
    if opts["uuid"] is not None:
        for record in devices:
            if record.get("uuid") == opts["uuid"]:
                return record
        return None
    if opts["major"] is not None or opts["minor"] is not None:
        for record in devices:
            if (record.get("major") == str(opts["major"] or 0)
                    and record.get("minor") == str(opts["minor"] or 0)):
                return record
        return None
    if name is None:
        return None
    base = name
    for prefix in ("/dev/mapper/",):
        if base.startswith(prefix):
            base = base[len(prefix):]
    for record in devices:
        if record.get("name") == base:
            return record
    # a path to the device node (e.g. /dev/vg/lv or /dev/loopN)
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError:
            return None
        for record in devices:
            if (str(os.major(st.st_rdev)), str(os.minor(st.st_rdev))) == (
                    record.get("major"), record.get("minor")):
                return record
    return None


def no_device():
    raise Fail("Device does not exist.\nCommand failed.")


def selected_devices(state, opts, args):
    """(records, several) for the devices a command names: one by name, -u or -j/-m, or
    else all of them. None after dmsetup's "No devices found" when there are none."""
    if args or opts["uuid"] is not None or opts["major"] is not None:
        record = find_device(state, opts, args[0] if args else None)
        if record is None:
            no_device()
        return [record], False
    records = state.devices()
    if not records:
        print("No devices found")
        return None
    return records, True


def cmd_info(state, opts, args):
    registry = state.holders()
    fields = parse_fields(opts["options"] or DEFAULT_OPTIONS) if opts["columns"] else None
    selected = selected_devices(state, opts, args)
    if selected is None:
        return 0
    records = selected[0]
    if fields is None:
        for record in records:
            print("\n".join(display_info(state, record, registry)))
            print()
        return 0
    rows = [row_of(state, r, registry) for r in records]
    if opts["select"]:
        try:
            tree = selection.parse(opts["select"])
            rows = [r for r in rows if selection.evaluate(tree, r, _resolve_dm_field)]
        except selection.SelectionError as error:
            raise Fail(str(error)) from None
    for line in render(rows, fields, opts):
        print(line)
    return 0


def _resolve_dm_field(name):
    return name if name in FIELDS else None


def target_of(record):
    table = record.get("table", "")
    parts = table.split(" ")
    return parts[2] if len(parts) > 2 else ""


def cmd_ls(state, opts, args):
    records = state.devices()
    if opts["target"]:
        records = [r for r in records if target_of(r) == opts["target"]]
    if not state.devices():
        print("No devices found")
        return 0
    for record in records:
        print("%s\t(%s:%s)" % (record.get("name"), record.get("major"), record.get("minor")))
    return 0


def status_params(state, record):
    kind = record.get("kind")
    sectors = record.get("sectors", "0")
    if kind == "snapshot":
        return devmapper.dm_status(state, record)
    return "0 %s linear " % sectors


def cmd_table(state, opts, args, status=False):
    selected = selected_devices(state, opts, args)
    if selected is None:
        return 0
    records, multiple = selected
    for record in records:
        if opts["target"] and target_of(record) != opts["target"]:
            continue
        line = status_params(state, record) if status else record.get("table", "")
        print(("%s: %s" % (record.get("name"), line)) if multiple else line)
    return 0


def cmd_deps(state, opts, args):
    selected = selected_devices(state, opts, args)
    if selected is None:
        return 0
    records, multiple = selected
    for record in records:
        dep = target_params_dev(record)
        prefix = "%s: " % record.get("name") if multiple else ""
        print("%s1 dependencies\t: (%s)" % (prefix, dep.replace(":", ", ")))
    return 0


def target_params_dev(record):
    parts = record.get("table", "").split(" ")
    return parts[3] if len(parts) > 3 else "0:0"


def cmd_remove(state, opts, args):
    if not args:
        raise Fail("Please specify device.")
    record = find_device(state, opts, args[0])
    if record is None:
        raise Fail("Device %s not found\nCommand failed." % args[0])
    if state.open_count(record):
        raise Fail("device-mapper: remove ioctl on %s  failed: Device or resource busy\n"
                   "Command failed." % record.get("name"))
    with state:
        devmapper.remove_device(state, record)
    return 0


def cmd_splitname(state, opts, args):
    if not args:
        raise Fail("Please specify device.")
    vg, lv, layer = dm_state.split_dm_name(args[0])
    row = {"vg_name": vg, "lv_name": lv, "lv_layer": layer}
    fields = parse_fields(opts["options"] or SPLITNAME_OPTIONS)
    for f in fields:
        row.setdefault(f, "")
    for line in render([row], fields, opts):
        print(line)
    return 0


VALUE_OPTS = {"-o": "options", "--options": "options", "-O": "sort", "--sort": "sort",
              "-S": "select", "--select": "select", "--separator": "separator",
              "-u": "uuid", "--uuid": "uuid", "-j": "major", "--major": "major",
              "-m": "minor", "--minor": "minor", "--target": "target",
              "--readahead": None, "--udevcookie": None, "-U": None, "-G": None, "-M": None,
              "--table": None, "--count": None, "--interval": None}
FLAG_OPTS = {"-c": "columns", "-C": "columns", "--columns": "columns",
             "--noheadings": "noheadings", "--nameprefixes": "nameprefixes",
             "--unquoted": "unquoted", "--rows": "rows", "-v": "verbose",
             "--verbose": "verbose", "-f": "force", "--force": "force", "--tree": "tree"}


def parse_args(argv):
    opts = {"columns": False, "noheadings": False, "nameprefixes": False, "unquoted": False,
            "rows": False, "verbose": False, "force": False, "tree": False,
            "options": None, "sort": None, "select": None, "separator": None, "uuid": None,
            "major": None, "minor": None, "target": None}
    args = []
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            args.extend(rest)
            break
        if arg.startswith("--") and "=" in arg:
            arg, value = arg.split("=", 1)
            rest.insert(0, value)
        if arg in VALUE_OPTS:
            if not rest:
                raise Fail("%s: option requires an argument" % arg)
            value = rest.pop(0)
            key = VALUE_OPTS[arg]
            if key:
                opts[key] = value
            continue
        if arg in FLAG_OPTS:
            opts[FLAG_OPTS[arg]] = True
            continue
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 and arg[:2] in VALUE_OPTS:
            opts[VALUE_OPTS[arg[:2]]] = arg[2:]
            continue
        if arg.startswith("-") and len(arg) > 1:
            # accepted and ignored: --noflush --noopencount --nolockfs --noudevsync
            # --noudevrules --verifyudev --inactive --readonly -r -y --yes --retry --deferred
            # --showkeys --checks --manglename
            continue
        args.append(arg)
    return opts, args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts, args = parse_args(argv)
        if not args:
            err("Usage:\n\ndmsetup [--version] [-h|--help [-c|-C|--columns]]")
            return 1
        command, args = args[0], args[1:]
        state = dm_state.NodeState()
        if command == "info":
            return cmd_info(state, opts, args)
        if command == "ls":
            return cmd_ls(state, opts, args)
        if command == "table":
            return cmd_table(state, opts, args)
        if command == "status":
            return cmd_table(state, opts, args, status=True)
        if command == "deps":
            return cmd_deps(state, opts, args)
        if command == "remove":
            return cmd_remove(state, opts, args)
        if command == "splitname":
            return cmd_splitname(state, opts, args)
        if command == "version":
            print("Library version:   %s" % LIBRARY_VERSION)
            print("Driver version:    %s" % DRIVER_VERSION)
            return 0
        if command in ("mknodes", "udevcomplete_all", "udevcookies", "targets"):
            if command == "targets":
                for name, version in (("snapshot-merge", "v1.5.0"), ("snapshot-origin", "v1.9.0"),
                                      ("snapshot", "v1.16.0"), ("striped", "v1.6.0"),
                                      ("linear", "v1.4.0"), ("error", "v1.6.0")):
                    print("%-16s %s" % (name, version))
            return 0
        err("Unknown command: %s" % command)
        return 1
    except Fail as failure:
        if failure.message:
            err(failure.message)
        return failure.code
    except BrokenPipeError:
        return 0
