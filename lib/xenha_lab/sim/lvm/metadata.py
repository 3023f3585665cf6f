"""LVM2 text metadata (the `vgcfgbackup` file format), read and written.

The format (lvm2 lib/format_text, `man vgcfgbackup`): `key = value` lines and named
sections `name { ... }`; values are "strings", integers or [lists]; `#` starts a
comment outside strings. The simulator reads a VG's metadata with
`vgcfgbackup -f FILE VG` (real lvm2, read-only) to learn extent sizes, PV data offsets,
segments, flags and snapshot relations, and injects snapshots by editing that file and
restoring it with `vgcfgrestore -f FILE VG` (see `xenha_lab.sim.lvm.snapshot`).
"""

from __future__ import annotations


class Section:
    """An ordered section: items are (key, value) with Section values for subsections."""

    def __init__(self, name: str = ""):
        self.name = name
        self.items: list[tuple[str, object]] = []

    def get(self, key, default=None):
        for k, v in self.items:
            if k == key:
                return v
        return default

    def set(self, key, value):
        for i, (k, _) in enumerate(self.items):
            if k == key:
                self.items[i] = (key, value)
                return
        self.items.append((key, value))

    def remove(self, key):
        self.items = [(k, v) for k, v in self.items if k != key]

    def sections(self):
        return [(k, v) for k, v in self.items if isinstance(v, Section)]

    def section(self, key) -> "Section | None":
        value = self.get(key)
        return value if isinstance(value, Section) else None


def _tokenize(text: str):
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch == '"':
            j = i + 1
            buf = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            yield ("str", "".join(buf))
            i = j + 1
        elif ch in "{}[]=,":
            yield (ch, ch)
            i += 1
        else:
            j = i
            while j < n and text[j] not in " \t\r\n#{}[]=,\"":
                j += 1
            word = text[i:j]
            try:
                yield ("int", int(word))
            except ValueError:
                try:
                    yield ("float", float(word))
                except ValueError:
                    yield ("word", word)
            i = j


def parse(text: str) -> Section:
    tokens = list(_tokenize(text))
    pos = 0

    def value():
        nonlocal pos
        kind, val = tokens[pos]
        pos += 1
        if kind == "[":
            items = []
            while tokens[pos][0] != "]":
                if tokens[pos][0] == ",":
                    pos += 1
                    continue
                items.append(value())
            pos += 1
            return items
        return val

    def body(section: Section, closing: bool):
        nonlocal pos
        while pos < len(tokens):
            kind, val = tokens[pos]
            if kind == "}":
                pos += 1
                if not closing:
                    raise ValueError("unbalanced }")
                return
            key = str(val)
            pos += 1
            nxt = tokens[pos][0]
            if nxt == "{":
                pos += 1
                sub = Section(key)
                body(sub, True)
                section.items.append((key, sub))
            elif nxt == "=":
                pos += 1
                section.items.append((key, value()))
            else:
                raise ValueError("unexpected token after %r" % key)
        if closing:
            raise ValueError("missing }")

    root = Section()
    body(root, False)
    return root


def _format_value(value) -> str:
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def format(section: Section, indent: int = 0) -> str:
    out = []
    pad = "\t" * indent
    for key, value in section.items:
        if isinstance(value, Section):
            out.append("%s%s {\n%s%s}\n" % (pad, key, format(value, indent + 1), pad))
        else:
            out.append("%s%s = %s\n" % (pad, key, _format_value(value)))
    return "".join(out)


# --- a typed view of one VG -------------------------------------------------------
class PV:
    def __init__(self, key: str, sec: Section):
        self.key = key
        self.id = sec.get("id", "")
        self.device = sec.get("device", "")
        self.pe_start = int(sec.get("pe_start", 0))
        self.pe_count = int(sec.get("pe_count", 0))
        self.flags = list(sec.get("flags", []) or [])
        self.missing = "MISSING" in self.flags or self.device == "[unknown]"


class Segment:
    def __init__(self, sec: Section):
        self.start_extent = int(sec.get("start_extent", 0))
        self.extent_count = int(sec.get("extent_count", 0))
        self.type = sec.get("type", "")
        self.stripe_count = int(sec.get("stripe_count", 1) or 1)
        self.stripes = list(sec.get("stripes", []) or [])
        self.origin = sec.get("origin")
        self.cow_store = sec.get("cow_store")
        self.merging_store = sec.get("merging_store")
        self.chunk_size = int(sec.get("chunk_size", 8) or 8)

    def areas(self):
        """[(pv key, first extent on that pv)]"""
        return [(self.stripes[i], int(self.stripes[i + 1])) for i in range(0, len(self.stripes) - 1, 2)]


class LV:
    def __init__(self, name: str, sec: Section):
        self.name = name
        self.section = sec
        self.id = sec.get("id", "")
        self.status = list(sec.get("status", []) or [])
        self.flags = list(sec.get("flags", []) or [])
        self.tags = list(sec.get("tags", []) or [])
        self.segments = [Segment(s) for _, s in sec.sections() if _.startswith("segment")]

    @property
    def visible(self) -> bool:
        # snapshotN LVs (type "snapshot" segments) are internal, whatever their status
        return "VISIBLE" in self.status and not any(s.type == "snapshot" for s in self.segments)

    @property
    def writable(self) -> bool:
        return "WRITE" in self.status or "WRITE_LOCKED" in self.flags

    @property
    def extents(self) -> int:
        return sum(s.extent_count for s in self.segments)


class VG:
    def __init__(self, root: Section):
        self.root = root
        names = [k for k, v in root.items if isinstance(v, Section)]
        if not names:
            raise ValueError("no volume group in metadata")
        self.name = names[0]
        self.sec: Section = root.section(self.name)  # type: ignore[assignment]
        self.id = self.sec.get("id", "")
        self.extent_size = int(self.sec.get("extent_size", 8192))
        self.system_id = self.sec.get("system_id", "")
        self.tags = list(self.sec.get("tags", []) or [])
        self.flags = list(self.sec.get("flags", []) or [])
        pvs = self.sec.section("physical_volumes") or Section()
        self.pvs = {k: PV(k, v) for k, v in pvs.sections()}
        lvs = self.sec.section("logical_volumes") or Section()
        self.lvs = {k: LV(k, v) for k, v in lvs.sections()}

    def lv_by_id(self, lv_id: str) -> LV | None:
        for lv in self.lvs.values():
            if lv.id == lv_id:
                return lv
        return None

    def snapshot_segments(self):
        """[(snapshotN lv, segment)] for every old-style snapshot."""
        out = []
        for lv in self.lvs.values():
            for seg in lv.segments:
                if seg.type == "snapshot":
                    out.append((lv, seg))
        return out

    def snapshots_of(self, origin: str):
        return [(lv, seg) for lv, seg in self.snapshot_segments() if seg.origin == origin]

    def cow_segment(self, cow: str):
        for lv, seg in self.snapshot_segments():
            if cow in (seg.cow_store, seg.merging_store):
                return lv, seg
        return None, None

    def is_visible(self, lv: LV) -> bool:
        """lvm2's lv_is_visible(): a snapshot (COW) LV is visible when its origin is,
        unless it is merging; internal snapshotN LVs never are."""
        snap_lv, seg = self.cow_segment(lv.name)
        if seg is not None:
            if seg.merging_store:
                return False
            origin = self.lvs.get(seg.origin)
            return origin is not None and origin.visible
        return lv.visible

    def is_partial(self, lv: LV) -> bool:
        for seg in lv.segments:
            for pv_key, _ in seg.areas():
                pv = self.pvs.get(pv_key)
                if pv is None or pv.missing:
                    return True
        return False
