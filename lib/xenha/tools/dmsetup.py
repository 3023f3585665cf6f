"""device-mapper as seen through `dmsetup info -c`: which LVs are active right now.

This is what the cheap LVM monitor reads (like resource-agents' LVM-activate): one
`dmsetup` call, no LVM metadata scan. Rows are asked for with an explicit separator and
field list so the parsing does not depend on column widths:

    dmsetup info -c --noheadings --noflush --separator '|' -o name,attr,open,segments,uuid -S 'vg_name=VG'

attr is 4 characters: L (live table) / I (inactive table only) / -, s (suspended),
r (read-only) / w, ... ; uuid of an LV is `LVM-<vg uuid><lv uuid>` (no dashes).
"""

from xenha.tools import runner

FIELDS = ("name", "attr", "open", "segments", "uuid")
NO_DEVICES = "No devices found"


class DmError(Exception):
    def __init__(self, message: str, result: runner.CommandResult | None = None):
        super().__init__(message)
        self.result = result


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


def devices_of_vg(vg: str, timeout: float, env=None) -> dict:
    """{dm name: MappedDevice} of the active LVs of `vg` (one dmsetup call)."""
    argv = ["dmsetup", "info", "-c", "--noheadings", "--noflush", "--separator", "|",
            "-o", ",".join(FIELDS), "-S", f"vg_name={vg}"]
    result = runner.run(argv, timeout, env=env)
    if not result.ok:
        raise DmError(result.describe(), result)
    return {device.name: device for device in parse_info(result.stdout)}
