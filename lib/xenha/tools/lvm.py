"""lvm2 (2.03): the `Lvm` driver, every lvm command agents and handlers run (argv,
timeouts, typed answers); the rows it returns are typed in tools/lvm_report.py.

Every report is read from `--reportformat json` on stdout only: stderr can interleave
with the JSON on a shared stream, newer lvm2 adds a top-level `"log"` array (the default
from 2.03.26), every value is a string and "" means undefined. Sizes are asked for in
bytes (`--units b --nosuffix`). Not found is an empty list with exit code 5 and the
reason on stderr ("Volume group "X" not found", "Failed to find logical volume "vg/lv"").

The report types and `json` are imported on first use: reports run in start, stop,
validation and deep monitors, not in the cheap monitor (which asks device-mapper, see
tools/dmsetup.py, and only checks through `binaries()` that lvm is installed). For the
same reason the methods carry no annotations naming the report types.
"""

from xenha.tools.tool import Tool

LV_FIELDS = ("vg_name", "lv_name", "lv_attr", "lv_size", "lv_active", "lv_tags", "lv_path", "origin",
             "lv_uuid", "segtype", "lv_health_status", "lv_autoactivation")
VG_FIELDS = ("vg_name", "vg_attr", "vg_systemid", "vg_tags", "vg_exported", "pv_count", "lv_count",
             "vg_missing_pv_count", "vg_free", "vg_extent_size", "vg_uuid", "vg_autoactivation",
             "vg_lock_type")
# The resync handler looks an LV up by its device path: the fields it needs.
DEVICE_LV_FIELDS = ("vg_name", "lv_name", "lv_size", "lv_attr", "origin", "lv_path")
RC_NOT_FOUND = 5
# How long one report may take at most (callers pass less when their deadline is nearer).
# Changes have no cap of their own: activating a large VG may take long, and the
# caller's operation timeout is the bound that matters.
QUERY_TIMEOUT = 30.0


# lvm(8): a tag is made of these characters (and at most 1024 of them); tags and system
# IDs also land inside `--config` strings below, where a quote would end the string.
TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-/=!:&#")
TAG_MAX = 1024


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not an LVM tag (None when it is)."""
    if not tag:
        return "is empty"
    bad = sorted({c for c in tag if c not in TAG_CHARS})
    if bad:
        return "has characters LVM refuses in a tag: " + ", ".join(ascii(c) for c in bad)
    if tag[0] == "-":
        return "must not start with '-'"
    return "is longer than 1024 characters" if len(tag) > TAG_MAX else None


def _config_word(value: str, what: str) -> str:
    """`value` for a string inside `--config`: refused when it would end the string."""
    if '"' in value or "\\" in value or not value.isprintable():
        raise LvmError(f"refusing to put {what} {value!r} into an lvm --config string")
    return value


class LvmError(Exception):
    """An lvm command failed or printed something unreadable."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # the finished command (runner.CommandResult); None: unreadable output


def not_found(result) -> bool:
    """Whether a finished lvm report (runner.CommandResult) failed for "no such VG/LV"."""
    text = result.stderr
    return result.returncode == RC_NOT_FOUND and (
        "not found" in text or "Failed to find logical volume" in text or "Cannot process volume group" in text)


class Lvm:
    """The lvm2 commands agents and handlers need, each a method bounded by a timeout
    (reports at most QUERY_TIMEOUT, less when the caller passes less).
    Reports return typed rows; changes return nothing or raise LvmError with lvm's words."""

    def __init__(self, env=None):
        self.env = env
        self.lvm = Tool("lvm", env)
        self._tools = {"lvm": self.lvm}

    def binaries(self) -> tuple:
        # lvs, vgs, lvchange, ... are links to lvm (lvm2 installs them together).
        return (self.lvm,)

    def system_sign(self) -> str | None:
        """Why device-mapper (what activates LVs) is on this host, None when it is not."""
        from xenha.tools.host import Host, sign_of_device_mapper

        return sign_of_device_mapper(Host(self.env))

    def _run(self, command: str, args, timeout: float):
        tool = self._tools.get(command)
        if tool is None:
            tool = self._tools[command] = Tool(command, self.env)
        return tool.run(list(args), timeout)

    def _report(self, command: str, kind: str, fields, targets, timeout: float, extra=()):
        args = ["--reportformat", "json", "--units", "b", "--nosuffix", "-o", ",".join(fields), *extra, *targets]
        result = self._run(command, args, min(timeout, QUERY_TIMEOUT))
        if result.timed_out:
            raise LvmError(result.describe(), result)
        if result.returncode not in (0, RC_NOT_FOUND):
            raise LvmError(result.describe(), result)
        return self._rows(result, kind), result

    @staticmethod
    def _rows(result, kind: str) -> list[dict]:
        from xenha.tools.lvm_report import ReportError, parse_report

        try:
            return parse_report(result.stdout, kind) if result.stdout.strip() else []
        except ReportError as unreadable:
            raise LvmError(str(unreadable), result) from None

    def _change(self, command: str, args, timeout: float) -> None:
        result = self._run(command, args, timeout)
        if not result.ok:
            raise LvmError(result.describe(), result)

    # --- reports ------------------------------------------------------------------------
    def volume_group(self, vg: str, timeout: float, foreign: bool = False):
        """The VolumeGroup, or None when lvm says it does not exist (or is foreign and not
        asked for)."""
        from xenha.tools.lvm_report import VolumeGroup

        rows, result = self._report("vgs", "vg", VG_FIELDS, [vg], timeout, ("--foreign",) if foreign else ())
        if not rows:
            if result.returncode == 0 or not_found(result):
                return None
            raise LvmError(result.describe(), result)
        return VolumeGroup(rows[0])

    def logical_volumes(self, vg: str, names, timeout: float, foreign: bool = False) -> list:
        """The named LVs of `vg` (all LVs when `names` is empty), as LogicalVolume. Missing
        ones are absent."""
        from xenha.tools.lvm_report import LogicalVolume

        targets = [f"{vg}/{name}" for name in names] if names else [vg]
        rows, result = self._report("lvs", "lv", LV_FIELDS, targets, timeout, ("--foreign",) if foreign else ())
        if not rows and result.returncode != 0 and not not_found(result):
            raise LvmError(result.describe(), result)
        return [LogicalVolume(row) for row in rows]

    def logical_volume_at(self, device: str, timeout: float):
        """The LogicalVolume whose device `device` is (a /dev path), None when lvs does
        not know it as one (not an LV, or not visible here)."""
        from xenha.tools.lvm_report import LogicalVolume

        args = ["--reportformat", "json", "--units", "b", "--nosuffix", "-o", ",".join(DEVICE_LV_FIELDS), device]
        result = self._run("lvs", args, min(timeout, QUERY_TIMEOUT))
        if not result.ok:
            return None
        rows = self._rows(result, "lv")
        return LogicalVolume(rows[0]) if rows else None

    def local_system_id(self, timeout: float) -> str:
        """This host's LVM system ID ("" when none is set)."""
        result = self._run("lvm", ["systemid"], min(timeout, QUERY_TIMEOUT))
        if not result.ok:
            raise LvmError(result.describe(), result)
        for line in result.stdout.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "system ID":
                return value.strip()
        return ""

    # --- activation ---------------------------------------------------------------------
    def activate(self, vg: str, names, mode: str, timeout: float, only_tagged: str | None = None) -> None:
        """`lvchange -ay --activationmode MODE VG/LV...`; with `only_tagged`, activation is
        limited to VGs carrying that tag (activation/volume_list, the tag ownership mode)."""
        args = ["-ay", "--activationmode", mode]
        if only_tagged is not None:
            tag = _config_word(only_tagged, "the tag")
            args += ["--config", f'activation{{volume_list=["@{tag}"]}}']
        self._change("lvchange", args + [f"{vg}/{name}" for name in names], timeout)

    def deactivate(self, vg: str, names, timeout: float) -> None:
        self._change("lvchange", ["-an"] + [f"{vg}/{name}" for name in names], timeout)

    # --- ownership of a shared VG ---------------------------------------------------------
    def set_system_id(self, vg: str, system_id: str, timeout: float, previous: str = "") -> None:
        """Give `vg` this system ID; `previous`, the current owner's ID, lets lvm read a
        VG that is foreign to this host."""
        args = ["-y", "--systemid", system_id, vg]
        if previous:
            previous = _config_word(previous, "the system ID")
            args[0:0] = ["--config", f'local/extra_system_ids=["{previous}"]']
        self._change("vgchange", args, timeout)

    def add_tag(self, vg: str, tag: str, timeout: float) -> None:
        self._change("vgchange", ["--addtag", tag, vg], timeout)

    def remove_tag(self, vg: str, tag: str, timeout: float) -> None:
        self._change("vgchange", ["--deltag", tag, vg], timeout)

    # --- provisioning -----------------------------------------------------------------------
    def create_volume(self, vg: str, name: str, size_bytes: int, tags, timeout: float) -> None:
        """A new linear LV `vg/name` of `size_bytes` (rounded up to whole extents by lvm),
        carrying `tags`. Signatures of earlier volumes found in its space are wiped
        without asking: a new volume's content is nobody's."""
        args = ["-n", name, "-L", f"{size_bytes}b", "-W", "y", "--yes"]
        for tag in tags:
            args += ["--addtag", tag]
        self._change("lvcreate", args + [vg], timeout)

    # --- snapshots ------------------------------------------------------------------------
    def create_snapshot(self, origin, name: str, size_bytes: int, timeout: float) -> None:
        """A copy-on-write snapshot `name` of `origin` (a LogicalVolume) with room for
        `size_bytes`."""
        self._change("lvcreate", ["-s", "-n", name, "-L", f"{size_bytes}b", origin.full_name], timeout)

    def remove_volume(self, vg: str, name: str, timeout: float) -> None:
        self._change("lvremove", ["-f", f"{vg}/{name}"], timeout)

    def merge_snapshot(self, vg: str, name: str, timeout: float) -> None:
        """Merge the snapshot back into its origin (`lvconvert --merge`): the origin
        returns to the snapshot's content (at its next activation if it is open)."""
        self._change("lvconvert", ["--merge", f"{vg}/{name}"], timeout)
