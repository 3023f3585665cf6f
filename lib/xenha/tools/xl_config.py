"""Reading xl domain configuration files (the format libxlutil parses).

A config is a sequence of `key = value` settings separated by newlines or `;`, with
`#` comments. Values are strings ('single' or "double" quoted), numbers (decimal or
0x hex) or lists `[ v, v, ... ]` that may span lines and end with a comma. `key += value`
appends. This reader covers what xenha needs (name, memory, disks, type) and reports
errors the way xl does: `FILE:LINE: config parsing error near `TOKEN': REASON`.

Disk specifications come in two forms, both accepted: the legacy positional
`[prefix:]target,vdev,access` (e.g. the howto's `drbd:vm_shaolin,hda1,w`, or
`phy:/dev/drbd1,xvda,w`) and the key=value form (`vdev=xvda,access=rw,target=/dev/drbd1`,
where `target=` takes the rest of the string).
"""

from __future__ import annotations


class XlConfigError(Exception):
    pass


class XlConfig:
    """The settings of one domain config file, in file order."""

    __slots__ = ("path", "settings")

    def __init__(self, path: str, settings: dict):
        self.path = path
        self.settings = settings

    def get(self, key: str, default=None):
        return self.settings.get(key, default)

    def string(self, key: str) -> str | None:
        value = self.settings.get(key)
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        return self.string("name")

    @property
    def is_hvm(self) -> bool:
        return self.string("type") == "hvm" or self.string("builder") == "hvm"

    def disks(self) -> list["DiskSpec"]:
        raw = self.settings.get("disk", [])
        if isinstance(raw, str):
            raw = [raw]
        return [parse_disk_spec(item, self.path) for item in raw]


def load(path: str) -> XlConfig:
    """Read and parse a config file; OSError if unreadable or not a regular file (a FIFO
    would block the agent: xenha.ocf.files), XlConfigError if malformed."""
    from xenha.ocf.files import read_regular

    return parse(read_regular(path).decode("utf-8", "surrogateescape"), path)


def parse(text: str, path: str = "<config>") -> XlConfig:
    return XlConfig(path, _Parser(text, path).settings())


# --- tokenizer/parser ---------------------------------------------------------------
_PUNCT = "=[],;+"
_IDENT_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_IDENT_CHARS = _IDENT_START + "0123456789"


class _Parser:
    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.pos = 0
        self.line = 1

    def error(self, near: str, reason: str) -> XlConfigError:
        return XlConfigError(f"{self.path}:{self.line}: config parsing error near `{near}': {reason}")

    # tokens: ("ident", s) ("string", s) ("number", int) ("punct", c) ("newline", "\n") ("eof", "")
    def next_token(self):
        text, n = self.text, len(self.text)
        while self.pos < n:
            char = text[self.pos]
            if char in " \t\r":
                self.pos += 1
            elif char == "#":
                while self.pos < n and text[self.pos] != "\n":
                    self.pos += 1
            else:
                break
        if self.pos >= n:
            return ("eof", "")
        char = text[self.pos]
        if char == "\n":
            self.pos += 1
            self.line += 1
            return ("newline", "\n")
        if char in "'\"":
            return ("string", self._string(char))
        if char == "+" and text.startswith("+=", self.pos):
            self.pos += 2
            return ("punct", "+=")
        if char in _PUNCT:
            self.pos += 1
            return ("punct", char)
        if char in _IDENT_START:
            start = self.pos
            while self.pos < n and text[self.pos] in _IDENT_CHARS:
                self.pos += 1
            return ("ident", text[start:self.pos])
        if char.isdigit() or char == "-":
            start = self.pos
            self.pos += 1
            while self.pos < n and (text[self.pos].isalnum()):
                self.pos += 1
            word = text[start:self.pos]
            try:
                return ("number", int(word, 0))
            except ValueError:
                raise self.error(word, "syntax error") from None
        raise self.error(self._rest_of_word(), "lexical error")

    def _rest_of_word(self) -> str:
        end = self.pos
        while end < len(self.text) and not self.text[end].isspace():
            end += 1
        return self.text[self.pos:end]

    def _string(self, quote: str) -> str:
        start = self.pos
        self.pos += 1
        out = []
        text, n = self.text, len(self.text)
        while self.pos < n:
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\n":
                break
            if char == "\\" and quote == '"' and self.pos + 1 < n:
                self.pos += 1
                char = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}.get(text[self.pos], "\\" + text[self.pos])
            out.append(char)
            self.pos += 1
        self.pos = start
        raise self.error(self._rest_of_word(), "lexical error")

    def settings(self) -> dict:
        result = {}
        while True:
            kind, value = self.next_token()
            if kind == "eof":
                return result
            if kind == "newline" or (kind, value) == ("punct", ";"):
                continue
            if kind != "ident":
                raise self.error(str(value), "syntax error")
            key = value
            kind, op = self.next_token()
            if (kind, op) not in (("punct", "="), ("punct", "+=")):
                raise self.error(str(op), "syntax error")
            item = self.value()
            if op == "+=" and key in result:
                previous = result[key]
                if isinstance(previous, list) and isinstance(item, list):
                    item = previous + item
                elif isinstance(previous, str) and isinstance(item, str):
                    item = previous + item
                else:
                    raise self.error(key, "type mismatch in +=")
            result[key] = item
            kind, end = self.next_token()
            if kind not in ("newline", "eof") and (kind, end) != ("punct", ";"):
                raise self.error(str(end), "syntax error")
            if kind == "eof":
                return result

    def value(self):
        kind, value = self.next_token()
        while kind == "newline":
            kind, value = self.next_token()
        if kind in ("string", "number"):
            return value
        if (kind, value) == ("punct", "["):
            return self.list_value()
        raise self.error(str(value), "syntax error")

    def list_value(self) -> list:
        items = []
        while True:
            kind, value = self.next_token()
            while kind == "newline":
                kind, value = self.next_token()
            if (kind, value) == ("punct", "]"):
                return items
            if kind not in ("string", "number"):
                raise self.error(str(value), "syntax error")
            items.append(value)
            kind, value = self.next_token()
            while kind == "newline":
                kind, value = self.next_token()
            if (kind, value) == ("punct", "]"):
                return items
            if (kind, value) != ("punct", ","):
                raise self.error(str(value), "syntax error")


# --- disk specifications ------------------------------------------------------------
_ACCESS = {"r": False, "ro": False, "w": True, "rw": True}
_DISK_KEYS = ("target", "vdev", "access", "format", "script", "backendtype", "devtype",
              "backend", "discard", "no-discard", "colo", "direct-io-safe", "specification",
              "trusted", "untrusted")
# Legacy target prefixes and what they imply (libxlutil's "protocol" prefixes).
_PREFIX_SCRIPTS = {"drbd": "block-drbd", "iscsi": "block-iscsi", "nbd": "block-nbd", "enbd": "block-enbd"}
_PREFIX_FORMATS = {"phy": "raw", "file": "raw", "aio": "raw", "raw": "raw", "qcow": "qcow",
                   "qcow2": "qcow2", "vhd": "vhd", "tap": None, "tap2": None}


class DiskSpec:
    """One `disk = [...]` entry."""

    __slots__ = ("spec", "target", "vdev", "writable", "format", "script", "is_cdrom")

    def __init__(self, spec, target, vdev, writable, format, script, is_cdrom):
        self.spec = spec
        self.target = target
        self.vdev = vdev
        self.writable = writable
        self.format = format
        self.script = script
        self.is_cdrom = is_cdrom

    @property
    def drbd_resource(self) -> str | None:
        """The DRBD resource a `drbd:`/`script=block-drbd` disk names (hotplug style)."""
        return self.target if self.script == "block-drbd" else None

    def __repr__(self) -> str:
        return (f"DiskSpec(target={self.target!r}, vdev={self.vdev!r}, writable={self.writable}, "
                f"format={self.format!r}, script={self.script!r})")


def _disk_error(path: str, spec: str, near: str, reason: str) -> XlConfigError:
    return XlConfigError(
        f"{path}: config parsing error in disk specification: {reason}: near `{near}' in `{spec}'")


def parse_disk_spec(spec: str, path: str = "<config>") -> DiskSpec:
    values = {"format": None, "script": None, "target": None, "vdev": None, "access": None}
    is_cdrom = False
    positional = []
    rest = spec
    while rest:
        rest = rest.lstrip()
        if rest.startswith("target="):
            values["target"] = rest[len("target="):]
            break
        head, sep, rest = rest.partition(",")
        head = head.strip()
        if "=" in head:
            key, _eq, value = head.partition("=")
            key = key.strip()
            if key not in _DISK_KEYS:
                raise _disk_error(path, spec, head, "unknown keyword")
            if key == "devtype":
                is_cdrom = value == "cdrom"
            else:
                values[key] = value
        elif head in ("cdrom",):
            is_cdrom = True
        elif head:
            positional.append(head)
        if not sep:
            break
    # Positional parameters fill target, vdev, access in that order (libxl disk syntax).
    for key, value in zip(("target", "vdev", "access"), positional):
        if key == "target" and values["target"] is not None:
            raise _disk_error(path, spec, value, "too many positional parameters")
        if values[key] is None:
            values[key] = value
    if len(positional) > 3:
        raise _disk_error(path, spec, positional[3], "too many positional parameters")
    access = values["access"] if values["access"] is not None else "rw"
    if access not in _ACCESS:
        raise _disk_error(path, spec, access, "unknown value for access")
    if values["vdev"] is None:
        raise _disk_error(path, spec, spec, "no vdev specified")
    target = values["target"]
    fmt, script = values["format"], values["script"]
    if target and ":" in target and not target.startswith("/"):
        prefix, _colon, remainder = target.partition(":")
        if prefix in _PREFIX_SCRIPTS:
            script = script or _PREFIX_SCRIPTS[prefix]
            target = remainder
        elif prefix in _PREFIX_FORMATS:
            if prefix in ("tap", "tap2") and ":" in remainder:
                prefix, _colon, remainder = remainder.partition(":")
            fmt = fmt or _PREFIX_FORMATS.get(prefix) or "raw"
            target = remainder
    return DiskSpec(spec, target, values["vdev"], _ACCESS[access], fmt or "raw", script, is_cdrom)
