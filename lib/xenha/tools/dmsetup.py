"""device-mapper's view of which LVs are active right now.

Two ways to ask, both without an LVM metadata scan:
- `mapped()`: the device nodes and sysfs, no process at all: `/dev/mapper/<dm name>` is
  a block device whose device number still exists in `/sys/dev/block/<maj>:<min>`, and
  `dm/suspended` there says whether I/O is suspended. This is what the depth-0 monitor
  uses: it must cost less than the shell agent's one `dmsetup` call.
- `Dmsetup.devices_of_vg()`: one `dmsetup info` call, which also gives open counts (stop needs
  them: an LV held open, e.g. by DRBD, must not be deactivated). Rows are asked for with
  an explicit separator and field list so the parsing does not depend on column widths:

    dmsetup info -c --noheadings --noflush --separator '|' -o name,attr,open,segments,uuid -S 'vg_name=VG'

attr is 4 characters: L (live table) / I (inactive table only) / -, s (suspended),
r (read-only) / w, ... ; uuid of an LV is `LVM-<vg uuid><lv uuid>` (no dashes).
"""

import posix

from xenha.tools.host import Host, sign_of_device_mapper
from xenha.tools.tool import Tool

MAPPER_DIR = "/dev/mapper"
SYSFS_BLOCK_DIR = "/sys/dev/block"
S_IFMT, S_IFBLK = 0o170000, 0o060000

FIELDS = ("name", "attr", "open", "segments", "uuid")
QUERY_TIMEOUT = 30.0
NO_DEVICES = "No devices found"


class DmError(Exception):
    """dmsetup failed or printed a row we cannot read."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # the finished command (runner.CommandResult); None: unreadable output


class MappedDevice:
    __slots__ = ("name", "attr", "open_count", "segments", "uuid")

    def __init__(self, name, attr, open_count, segments, uuid):
        self.name = name
        self.attr = attr
        self.open_count = open_count
        self.segments = segments
        self.uuid = uuid

    @property
    def live(self) -> bool:
        return self.attr[:1] == "L"

    @property
    def suspended(self) -> bool:
        return self.attr[1:2] == "s"

    def __repr__(self) -> str:
        return f"MappedDevice({self.name}, {self.attr}, open={self.open_count})"


def dm_name(vg: str, lv: str) -> str:
    """The device-mapper name of an LV: dashes in each part doubled, joined by a dash."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


class NodeState:
    """What the device node and sysfs say about one mapped device."""

    __slots__ = ("name", "active", "suspended")

    def __init__(self, name: str, active: bool, suspended: bool):
        self.name = name
        self.active = active
        self.suspended = suspended


def mapped(name: str, mapper_dir: str = MAPPER_DIR, sysfs_dir: str = SYSFS_BLOCK_DIR) -> NodeState:
    """Whether the device-mapper device `name` exists (node and kernel device), suspended or not."""
    if not name or "/" in name or name in (".", ".."):
        return NodeState(name, False, False)   # no device-mapper name: nothing to look at
    try:
        info = posix.stat(f"{mapper_dir}/{name}")
    except OSError:
        return NodeState(name, False, False)
    if info.st_mode & S_IFMT != S_IFBLK:
        return NodeState(name, False, False)
    sysfs = f"{sysfs_dir}/{posix.major(info.st_rdev)}:{posix.minor(info.st_rdev)}"
    try:
        posix.stat(sysfs)
    except OSError:
        return NodeState(name, False, False)   # a stale node: the kernel device is gone
    suspended = False
    try:
        with open(f"{sysfs}/dm/suspended", encoding="ascii") as handle:
            suspended = handle.read().strip() == "1"
    except OSError:
        pass
    return NodeState(name, True, suspended)


def names_of_vg(vg: str, mapper_dir: str = MAPPER_DIR) -> list[str]:
    """LV names that have a device node in /dev/mapper for this VG."""
    prefix = vg.replace("-", "--") + "-"
    try:
        entries = posix.listdir(mapper_dir)
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry.startswith(prefix):
            rest = entry[len(prefix):]
            if "-" not in rest.replace("--", ""):
                found.append(rest.replace("--", "-"))
    return sorted(found)


def parse_info(text: str) -> list[MappedDevice]:
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line == NO_DEVICES:
            continue
        parts = line.split("|")
        if len(parts) != len(FIELDS):
            raise DmError(f"dmsetup printed an unreadable row: {line!r}")
        name, attr, open_count, segments, uuid = parts
        if not open_count.strip().isdigit() or not segments.strip().isdigit():
            raise DmError(f"dmsetup printed an unreadable row: {line!r}")
        devices.append(MappedDevice(name, attr, int(open_count), int(segments), uuid))
    return devices


class Dmsetup:
    """device-mapper on this host: the process-free reads above (seen from the host's
    root, see tools/host.py) and the dmsetup calls agents make."""

    def __init__(self, env=None):
        self.dmsetup = Tool("dmsetup", env)
        self.host = Host(env)

    def binaries(self) -> tuple:
        return (self.dmsetup,)

    def system_sign(self) -> str | None:
        """Why device-mapper is present on this host, None when it is not."""
        return sign_of_device_mapper(self.host)

    def mapped(self, name: str) -> NodeState:
        return mapped(name, self.host.path(MAPPER_DIR), self.host.path(SYSFS_BLOCK_DIR))

    def names_of_vg(self, vg: str) -> list[str]:
        return names_of_vg(vg, self.host.path(MAPPER_DIR))

    def devices_of_vg(self, vg: str, timeout: float) -> dict:
        """{dm name: MappedDevice} of the active LVs of `vg` (one dmsetup call)."""
        args = ["info", "-c", "--noheadings", "--noflush", "--separator", "|",
                "-o", ",".join(FIELDS), "-S", f"vg_name={vg}"]
        result = self.dmsetup.run(args, min(timeout, QUERY_TIMEOUT))
        if not result.ok:
            raise DmError(result.describe(), result)
        return {device.name: device for device in parse_info(result.stdout)}
