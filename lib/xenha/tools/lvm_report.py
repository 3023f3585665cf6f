"""What lvm2's reports say, typed: rows of `--reportformat json` as LogicalVolume and
VolumeGroup (the LVM driver in tools/lvm.py runs the commands and returns these).

Apart from the driver because only reports need it: the LVM agent's cheapest monitor
checks that lvm is installed (through the driver) but reads device-mapper, not reports,
and must not pay for this module. Every value in a report is a string, "" means
undefined; lv_attr and vg_attr are decoded here.
"""


class ReportError(ValueError):
    """lvm printed something that is not a JSON report (the driver makes it an LvmError)."""


def parse_report(text: str, kind: str) -> list[dict]:
    """The rows of a JSON report (`kind` is "lv", "vg" or "pv"), tolerant of the "log" key."""
    import json

    start = text.find("{")
    if start < 0:
        raise ReportError("lvm printed no JSON report")
    try:
        document = json.loads(text[start:])
    except ValueError as bad:
        raise ReportError(f"lvm printed unreadable JSON: {bad}") from None
    rows = []
    for section in document.get("report", []):
        rows.extend(section.get(kind, []))
    return rows


def split_tags(text: str) -> list[str]:
    return [tag for tag in text.split(",") if tag]


def _int(text: str) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


class LogicalVolume:
    """One row of `lvs`, typed. `attr` is lvs' 10-character lv_attr."""

    __slots__ = ("vg", "name", "attr", "size", "tags", "path", "origin", "uuid", "segtype", "health",
                 "autoactivation", "active_field")

    def __init__(self, row: dict):
        self.vg = row.get("vg_name", "")
        self.name = row.get("lv_name", "")
        self.attr = row.get("lv_attr", "")
        self.size = _int(row.get("lv_size", ""))
        self.tags = split_tags(row.get("lv_tags", ""))
        self.path = row.get("lv_path", "") or f"/dev/{self.vg}/{self.name}"
        self.origin = row.get("origin", "")
        self.uuid = row.get("lv_uuid", "")
        self.segtype = row.get("segtype", "")
        self.health = row.get("lv_health_status", "")
        self.autoactivation = row.get("lv_autoactivation", "") == "enabled"
        self.active_field = row.get("lv_active", "")

    @property
    def full_name(self) -> str:
        return f"{self.vg}/{self.name}"

    def _attr(self, index: int) -> str:
        return self.attr[index] if len(self.attr) > index else "?"

    @property
    def active(self) -> bool | None:
        """True/False from the state character; None when lvm cannot tell (`X`)."""
        state = self._attr(4)
        if state == "X" or state == "?":
            return None
        return state in ("a", "s", "i", "d")

    @property
    def open(self) -> bool | None:
        flag = self._attr(5)
        if flag == "X" or flag == "?":
            return None
        return flag == "o"

    @property
    def partial(self) -> bool:
        """Missing PVs under this LV (attr 9 `p`, or health "partial")."""
        return self._attr(8) == "p" or self.health == "partial"

    @property
    def is_snapshot(self) -> bool:
        return self._attr(0) in ("s", "S")

    def __repr__(self) -> str:
        return f"LogicalVolume({self.full_name}, {self.attr})"


class VolumeGroup:
    """One row of `vgs`, typed."""

    __slots__ = ("name", "attr", "systemid", "tags", "exported", "pv_count", "lv_count", "missing_pvs",
                 "free", "extent_size", "uuid", "autoactivation", "lock_type")

    def __init__(self, row: dict):
        self.name = row.get("vg_name", "")
        self.attr = row.get("vg_attr", "")
        self.systemid = row.get("vg_systemid", "")
        self.tags = split_tags(row.get("vg_tags", ""))
        self.exported = row.get("vg_exported", "") == "exported" or self.attr[2:3] == "x"
        self.pv_count = _int(row.get("pv_count", ""))
        self.lv_count = _int(row.get("lv_count", ""))
        self.missing_pvs = _int(row.get("vg_missing_pv_count", "")) or 0
        self.free = _int(row.get("vg_free", ""))
        self.extent_size = _int(row.get("vg_extent_size", ""))
        self.uuid = row.get("vg_uuid", "")
        self.autoactivation = row.get("vg_autoactivation", "") == "enabled"
        self.lock_type = row.get("vg_lock_type", "")

    @property
    def partial(self) -> bool:
        return self.missing_pvs > 0 or self.attr[3:4] == "p"

    def __repr__(self) -> str:
        return f"VolumeGroup({self.name}, {self.attr}, systemid={self.systemid!r})"
