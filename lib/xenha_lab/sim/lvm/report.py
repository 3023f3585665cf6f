"""Report rewriting for the simulated lvm: what `lvs`, `lvdisplay`, `lvscan` and
`vgdisplay` show on a real host where activation happened (see `xenha_lab.sim.lvm.lvm`).

Values on a real host (lvm2 lib/metadata/lv.c lv_attr_dup_with_info_and_seg_status and
lv_active_dup, lib/report/report.c, lib/report/values.h):
- lv_attr char 5: `a` active, `-` inactive, `I` invalid snapshot; char 6: `o` open, `-`;
  char 2 `R` for a writable LV activated read-only.
- lv_active "active" | ""; lv_active_locally "active locally" | ""; lv_active_remotely
  "" (not clustered); lv_active_exclusively "active exclusively" | "".
- lv_suspended / lv_live_table / lv_inactive_table / lv_device_open: "" or their name
  ("live table present", "open") when active, "unknown" when not.
- lv_permissions "writeable" / "read-only" / "read-only-override"; "unknown" for an
  inactive writable LV. lv_kernel_major/minor -1 and lv_kernel_read_ahead -1 inactive.
- data_percent/snap_percent: a snapshot's usage when active, else "".
- lv_snapshot_invalid for a snapshot: "" active and valid, "snapshot invalid" otherwise;
  lv_merge_failed "" for an active snapshot; both "unknown" for other LVs.
With `--binary`, binary fields print 1/0 (and -1 for unknown).

Table output is produced from two real calls: a JSON one (field names and values) and
one in the user's format with an unambiguous separator (headings, widths, alignment);
rewritten columns are re-padded, the others are printed as lvm2 printed them.
"""

from __future__ import annotations

import re
import sys

from xenha_lab.sim.lvm import devmapper as dm
from xenha_lab.sim.lvm import selection, snapshot
from xenha_lab.sim.lvm import state as st
from xenha_lab.sim.lvm.cmdline import has_flag, option_value
from xenha_lab.sim.lvm.runner import count_config, passthrough, run_lvm, split_config

SEP = "\x1f"
# field -> (heading, declared width, right-aligned, binary)
AFFECTED = {
    "lv_attr": ("Attr", 4, False, False),
    "lv_active": ("Active", 0, False, False),
    "lv_active_locally": ("ActLocal", 0, True, True),
    "lv_active_remotely": ("ActRemote", 0, True, True),
    "lv_active_exclusively": ("ActExcl", 0, True, True),
    "lv_kernel_major": ("KMaj", 4, True, False),
    "lv_kernel_minor": ("KMin", 4, True, False),
    "lv_kernel_read_ahead": ("KRahead", 7, True, False),
    "lv_permissions": ("LPerms", 8, False, False),
    "lv_suspended": ("Suspended", 10, True, True),
    "lv_live_table": ("LiveTable", 20, True, True),
    "lv_inactive_table": ("InactiveTable", 20, True, True),
    "lv_device_open": ("DevOpen", 10, True, True),
    "data_percent": ("Data%", 6, True, False),
    "snap_percent": ("Snap%", 6, True, False),
    "lv_snapshot_invalid": ("SnapInvalid", 0, True, True),
    "lv_merge_failed": ("MergeFailed", 0, True, True),
}
BINARY_NAMES = {
    "lv_active_locally": "active locally", "lv_active_remotely": "active remotely",
    "lv_active_exclusively": "active exclusively", "lv_suspended": "suspended",
    "lv_live_table": "live table present", "lv_inactive_table": "inactive table present",
    "lv_device_open": "open", "lv_snapshot_invalid": "snapshot invalid",
    "lv_merge_failed": "merge failed",
}
SYNONYMS = {
    "lv_active_locally": {"active": "active locally", "locally": "active locally"},
    "lv_active_remotely": {"active": "active remotely", "remotely": "active remotely"},
    "lv_active_exclusively": {"active": "active exclusively", "exclusively": "active exclusively"},
    "lv_live_table": {"live table": "live table present", "live": "live table present"},
    "lv_inactive_table": {"inactive table": "inactive table present", "inactive": "inactive table present"},
    "lv_snapshot_invalid": {"invalid": "snapshot invalid"},
    "lv_merge_failed": {"failed": "merge failed"},
    "lv_permissions": {"rw": "writeable", "read-write": "writeable", "r": "read-only", "ro": "read-only"},
}
ALIASES = {"active": "lv_active", "attr": "lv_attr", "snap_percent": "snap_percent",
           "data_percent": "data_percent"}
UNIT_FACTORS = {"b": 1, "s": 512, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
                "p": 1 << 50, "e": 1 << 60}


def canonical(field: str) -> str:
    field = field.strip().lower()
    if field in AFFECTED:
        return field
    if "lv_" + field in AFFECTED:
        return "lv_" + field
    return ALIASES.get(field, field)


# --- values -----------------------------------------------------------------------------
class Context:
    def __init__(self, units: str = "r", suffix: bool = True, binary: bool = False):
        self.state = st.NodeState()
        self.records = self.state.devices()
        self.by_uuid = {r.get("lv_uuid"): r for r in self.records if not r.get("layer")}
        self.registry = self.state.holders()
        self.units, self.suffix, self.binary = units, suffix, binary
        self._snap = {}

    def snapshot(self, record):
        uuid = record.get("lv_uuid")
        if uuid not in self._snap:
            self._snap[uuid] = snapshot.snapshot_state(self.state, record)
        return self._snap[uuid]

    def size(self, nbytes: int) -> str:
        unit = self.units or "r"
        lower = unit.lower()
        if lower in ("h", "r"):
            value, letter = nbytes, "B"
            for letter_ in "bkmgtpe":
                factor = UNIT_FACTORS[letter_]
                if nbytes >= factor:
                    letter = letter_
            value = nbytes / UNIT_FACTORS[letter]
            text = "%.2f" % value
            return text + (letter if self.suffix else "") if letter != "b" else (
                "%d" % nbytes + ("B" if self.suffix else ""))
        factor = UNIT_FACTORS.get(lower, 1)
        if unit.isupper() and lower not in ("b", "s"):
            factor = 1000 ** "bkmgtpe".index(lower)
        value = nbytes / factor
        text = ("%d" % value) if lower in ("b", "s") else "%.2f" % value
        return text + (unit.upper() if lower in ("b", "s") else unit) if self.suffix else text

    def binary_value(self, field: str, state: str | None) -> str:
        """state None = unknown, "" = no, else yes."""
        if self.binary:
            return "-1" if state is None else ("1" if state else "0")
        if state is None:
            return "unknown"
        return BINARY_NAMES[field] if state else ""

    def values(self, lv_uuid: str, attr: str) -> dict:
        record = self.by_uuid.get(lv_uuid)
        active = record is not None
        is_cow = attr[:1] in ("s", "S")
        writable = attr[1:2] == "w"
        opened = bool(active and self.state.holders_of(record, self.registry))
        invalid, pct = False, ""
        if active and is_cow and record.get("kind") == "snapshot":
            pct, invalid = self.snapshot(record)
        new_attr = attr
        if len(attr) >= 6 and attr[4:6] in ("XX", "--", "ao", "a-"):
            ch5 = ("I" if invalid else "a") if active else "-"
            ch6 = ("o" if opened else "-") if active else "-"
            chars = list(attr)
            chars[4], chars[5] = ch5, ch6
            if active and writable and record.get("ro") == "1":
                chars[1] = "R"
            new_attr = "".join(chars)
        if attr[1:2] == "r":
            perms = "read-only"
        elif active:
            perms = "read-only-override" if record.get("ro") == "1" else "writeable"
        else:
            perms = "unknown"
        values = {
            "lv_attr": new_attr,
            "lv_active": "active" if active else "",
            "lv_active_locally": self.binary_value("lv_active_locally", "y" if active else ""),
            "lv_active_remotely": self.binary_value("lv_active_remotely", ""),
            "lv_active_exclusively": self.binary_value("lv_active_exclusively", "y" if active else ""),
            "lv_kernel_major": record.get("major", "-1") if active else "-1",
            "lv_kernel_minor": record.get("minor", "-1") if active else "-1",
            "lv_kernel_read_ahead": self.size(read_ahead_bytes(record)) if active else "-1",
            "lv_permissions": perms,
            "lv_suspended": self.binary_value("lv_suspended", "" if active else None),
            "lv_live_table": self.binary_value("lv_live_table", "y" if active else None),
            "lv_inactive_table": self.binary_value("lv_inactive_table", "" if active else None),
            "lv_device_open": self.binary_value("lv_device_open", ("y" if opened else "") if active else None),
            "data_percent": pct if active and is_cow else "",
            "snap_percent": pct if active and is_cow else "",
            "lv_snapshot_invalid": self.binary_value(
                "lv_snapshot_invalid", ("y" if invalid or not active else "") if is_cow else None),
            "lv_merge_failed": self.binary_value("lv_merge_failed", "" if (is_cow and active) else None),
        }
        return values


def read_ahead_bytes(record) -> int:
    return dm.read_ahead_sectors(record) * 512


# --- argument handling --------------------------------------------------------------------
def take_option(args, names, with_value=True):
    """(args without the option, last value or True/None)."""
    out, value, i = [], None, 0
    while i < len(args):
        arg = args[i]
        matched = False
        for name in names:
            if arg == name:
                matched = True
                if with_value and i + 1 < len(args):
                    value = args[i + 1]
                    i += 1
                elif not with_value:
                    value = True
            elif with_value and name.startswith("--") and arg.startswith(name + "="):
                matched, value = True, arg.split("=", 1)[1]
            elif with_value and not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                matched, value = True, arg[len(name):]
        if not matched:
            out.append(arg)
        i += 1
    return out, value


def option_fields(args):
    """All -o/--options values (in order)."""
    values, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg in ("-o", "--options") and i + 1 < len(args):
            values.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--options="):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith("-o") and len(arg) > 2 and not arg.startswith("--"):
            values.append(arg[2:])
        i += 1
    return values


def parse_row_line(line: str):
    """(indent, [(key, value)], trailing comma) of a JSON report row line, or None."""
    stripped = line.rstrip("\n")
    body = stripped.lstrip()
    if not body.startswith('{"'):
        return None
    indent = stripped[:len(stripped) - len(body)]
    comma = body.endswith(",")
    if comma:
        body = body[:-1]
    if not body.endswith("}"):
        return None
    pairs = re.findall(r'"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"', body)
    return indent, pairs, comma


def format_row(indent: str, pairs, comma: bool) -> str:
    inner = ", ".join('"%s":"%s"' % (k, v) for k, v in pairs)
    return "%s{%s}%s\n" % (indent, inner, "," if comma else "")


# --- lvs --------------------------------------------------------------------------------
def lvs(command: str, args) -> int:
    rest, user_config = split_config(args)
    if has_flag(rest, "--rows", "--help", "-h") or "--version" in rest:
        return passthrough(command, args)
    rest_no_fmt, fmt = take_option(rest, ["--reportformat"])
    json_mode = (fmt or "").startswith("json")
    units = option_value(rest, "--units") or "r"
    suffix = not has_flag(rest, "--nosuffix")
    binary = has_flag(rest, "--binary")
    ctx = Context(units, suffix, binary)
    select_text = option_value(rest, "-S", "--select")
    own_selection = None
    if select_text:
        try:
            tree = selection.parse(select_text)
        except selection.SelectionError:
            tree = None
        if tree is not None and any(canonical(f) in AFFECTED for f in selection.fields_of(tree)):
            own_selection = tree
    base = rest
    hidden = []
    if own_selection is not None:
        base, _ = take_option(base, ["-S", "--select"])
        hidden = sorted(selection.fields_of(own_selection))
    hidden += ["lv_uuid", "lv_attr"]
    if json_mode:
        return lvs_json(base, hidden, own_selection, user_config, ctx)
    return lvs_table(base, hidden, own_selection, user_config, ctx, args)


def select_ok(tree, sel_fields, hidden_values, row_values):
    if tree is None:
        return True
    lookup = {}
    for name, value in zip(sel_fields, hidden_values):
        key = canonical(name)
        shown = row_values.get(key, value)
        syn = SYNONYMS.get(key)
        lookup[name.lower()] = (shown, syn) if syn else shown
    try:
        return selection.evaluate(tree, lookup)
    except selection.SelectionError:
        return False


def lvs_json(base, hidden, tree, user_config, ctx) -> int:
    argv = [*base, "-o", "+" + ",".join(hidden)]
    if "--reportformat" not in " ".join(base):
        argv = ["--reportformat", "json", *argv]
    proc = run_lvm("lvs", argv, user_config)
    sel_fields = hidden[:-2]
    lines = proc.stdout.splitlines(keepends=True)
    out, block, in_lv = [], [], False
    for line in lines:
        stripped = line.strip()
        if not in_lv:
            out.append(line)
            if stripped == '"lv": [':
                in_lv, block = True, []
            continue
        parsed = parse_row_line(line)
        if parsed is None:
            # end of the rows block
            kept = [b for b in block if b is not None]
            for i, (indent, pairs) in enumerate(kept):
                out.append(format_row(indent, pairs, i < len(kept) - 1))
            out.append(line)
            in_lv = False
            continue
        indent, pairs, _ = parsed
        n_hidden = len(hidden)
        shown, extra = pairs[:-n_hidden], pairs[-n_hidden:]
        extra_values = [v for _, v in extra]
        lv_uuid, attr = extra_values[-2], extra_values[-1]
        values = ctx.values(lv_uuid, attr)
        new_pairs = [(k, values[k] if k in AFFECTED else v) for k, v in shown]
        if not select_ok(tree, sel_fields, extra_values[:-2], values):
            block.append(None)
            continue
        block.append((indent, new_pairs))
    sys.stderr.write(proc.stderr)
    sys.stdout.write("".join(out))
    return proc.returncode


def json_row_pairs(args, user_config):
    """[(key, value)] rows of a real JSON lvs report, duplicate keys kept."""
    proc = run_lvm("lvs", args, user_config)
    rows = []
    for line in proc.stdout.splitlines():
        parsed = parse_row_line(line)
        if parsed is not None and not any(k == "log_seq_num" for k, _ in parsed[1]):
            rows.append(parsed[1])
    return rows


def lvs_table(base, hidden, tree, user_config, ctx, original_args) -> int:
    # 1) field names and values
    json_args, _ = take_option(base, ["--separator"])
    for flag in ("--noheadings", "--nameprefixes", "--unquoted", "--aligned", "--binary"):
        json_args, _ = take_option(json_args, [flag], with_value=False)
    json_args, _ = take_option(json_args, ["--headings"])
    rows = json_row_pairs(["--reportformat", "json", *json_args, "-o", "+" + ",".join(hidden)], user_config)
    n_hidden = len(hidden)
    keys = [k for k, _ in rows[0]] if rows else []
    shown_keys = keys[:-n_hidden] if keys else []
    if tree is None and not any(k in AFFECTED for k in shown_keys):
        return passthrough("lvs", original_args)
    # 2) the user's format with an unambiguous separator
    user_sep = option_value(base, "--separator")
    nameprefixes = has_flag(base, "--nameprefixes")
    aligned = (user_sep is None or has_flag(base, "--aligned")) and not nameprefixes
    table_args, _ = take_option(base, ["--separator"])
    table_args += ["--separator", SEP]
    if aligned and "--aligned" not in table_args:
        table_args.append("--aligned")
    proc = run_lvm("lvs", table_args, user_config)
    sys.stderr.write(proc.stderr)
    lines = [l[2:] if l.startswith("  ") else l for l in proc.stdout.splitlines()]
    headings = bool(lines) and len(lines) == len(rows) + 1
    if not rows or len(lines) - (1 if headings else 0) != len(rows):
        sys.stdout.write(proc.stdout.replace(SEP, user_sep if user_sep is not None else " "))
        return proc.returncode
    cells = [line.split(SEP) for line in lines]
    sel_fields = hidden[:-2]
    new_rows, keep = [], []
    for i, row in enumerate(rows):
        values_list = [v for _, v in row]
        extra_values = values_list[-n_hidden:]
        values = ctx.values(extra_values[-2], extra_values[-1])
        keep.append(select_ok(tree, sel_fields, extra_values[:-2], values))
        new_rows.append(values)
    head = cells[0] if headings else None
    body = cells[1:] if headings else cells
    ncols = len(shown_keys)
    if any(len(c) != ncols for c in body):
        sys.stdout.write(proc.stdout.replace(SEP, user_sep if user_sep is not None else " "))
        return proc.returncode
    body = [c for c, k in zip(body, keep) if k]
    rows_values = [v for v, k in zip(new_rows, keep) if k]
    for col, key in enumerate(shown_keys):
        if key not in AFFECTED:
            continue
        heading, declared, right, _binary = AFFECTED[key]
        if nameprefixes:
            for r, cell in enumerate(body):
                prefix, _, _ = cell[col].partition("=")
                value = rows_values[r][key]
                quoted = "'" in cell[col]
                cell[col] = "%s=%s" % (prefix, ("'%s'" % value) if quoted else value)
            continue
        new_values = [rv[key] for rv in rows_values]
        if aligned:
            head_text = head[col].strip() if head else heading
            width = max([len(head_text), declared] + [len(v) for v in new_values])
            if head:
                head[col] = head_text.ljust(width)
            for r, cell in enumerate(body):
                cell[col] = new_values[r].rjust(width) if right else new_values[r].ljust(width)
        else:
            for r, cell in enumerate(body):
                cell[col] = new_values[r]
    joiner = user_sep if user_sep is not None else " "
    out = []
    if head is not None and body:
        out.append("  " + joiner.join(head) + "\n")
    for cell in body:
        out.append("  " + joiner.join(cell) + "\n")
    sys.stdout.write("".join(out))
    return proc.returncode


# --- lvdisplay / lvscan / vgdisplay ---------------------------------------------------
def lvdisplay(command: str, args) -> int:
    if count_config(args) > 1 or has_flag(args, "-c", "--colon", "-C", "--columns"):
        if has_flag(args, "-C", "--columns"):
            return lvs("lvs", [a for a in args if a not in ("-C", "--columns")])
        return passthrough(command, args)
    rest, user_config = split_config(args)
    proc = run_lvm(command, rest, user_config)
    ctx = Context()
    out = []
    record = None
    for line in proc.stdout.splitlines(keepends=True):
        text = line.rstrip("\n")
        if text.strip().startswith("LV UUID"):
            uuid = text.split()[-1]
            record = ctx.by_uuid.get(uuid)
        if text.strip().startswith("LV Status"):
            continue          # printed below, where lvm2 prints it with activation
        if text.strip().startswith("LV Size"):
            # lvm2 prints these only when activation is enabled (lib/display/display.c)
            out.append("  LV Status              %s\n" % ("available" if record is not None else "NOT available"))
            if record is not None:
                out.append("  # open                 %d\n" % ctx.state.open_count(record, ctx.registry))
        if record is not None and text.strip().startswith("Read ahead sectors"):
            out.append(line)
            out.append("  - currently set to     %d\n" % (read_ahead_bytes(record) // 512))
            continue
        if record is not None and text.strip() == "" and out and not out[-1].strip().startswith("Block device"):
            out.append("  Block device           %s:%s\n" % (record.get("major"), record.get("minor")))
            record = None
        if "[INACTIVE]" in text or "INACTIVE destination" in text:
            line = line.replace("[INACTIVE]", "[active]") if ctx.records else line
        out.append(line)
    sys.stderr.write(proc.stderr)
    sys.stdout.write("".join(out))
    return proc.returncode


def lvscan(command: str, args) -> int:
    if count_config(args) > 1:
        return passthrough(command, args)
    rest, user_config = split_config(args)
    proc = run_lvm(command, rest, user_config)
    ctx = Context()
    by_path = {}
    for record in ctx.records:
        by_path["/dev/%s/%s" % (record.get("vg"), record.get("lv"))] = record
    out = []
    for line in proc.stdout.splitlines(keepends=True):
        match = re.match(r"^(\s*)inactive (.{8}) '([^']+)'(.*)$", line.rstrip("\n"))
        if match and match.group(3) in by_path:
            record = by_path[match.group(3)]
            if not (record.get("kind") == "snapshot" and ctx.snapshot(record)[1]):
                line = "%sACTIVE   %s '%s'%s\n" % (match.group(1), match.group(2), match.group(3), match.group(4))
        out.append(line)
    sys.stderr.write(proc.stderr)
    sys.stdout.write("".join(out))
    return proc.returncode


def vgdisplay(command: str, args) -> int:
    if count_config(args) > 1 or has_flag(args, "-c", "--colon", "-C", "--columns", "-s", "--short"):
        return passthrough(command, args)
    rest, user_config = split_config(args)
    proc = run_lvm(command, rest, user_config)
    ctx = Context()
    out = proc.stdout.splitlines(keepends=True)
    # "Open LV" comes before "VG UUID" in each block: fix in a second pass
    result, block = [], []
    for line in out:
        block.append(line)
        if line.strip().startswith("VG UUID"):
            uuid = line.split()[-1].replace("-", "")
            opened = sum(1 for r in ctx.records if r.get("vg_uuid", "").replace("-", "") == uuid
                         and ctx.state.holders_of(r, ctx.registry))
            block = [re.sub(r"^(\s*Open LV\s+)\d+", lambda m: m.group(1) + str(opened), b) for b in block]
            result.extend(block)
            block = []
    result.extend(block)
    sys.stderr.write(proc.stderr)
    sys.stdout.write("".join(result))
    return proc.returncode
