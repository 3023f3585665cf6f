"""Small per-resource records under `HA_RSCTMP` (tmpfs: lost at reboot, like domains are).

Agents remember facts between operations here (e.g. the domain name a resource started,
or the last promotion score written) so that later operations need not re-derive them
from files that may have changed or vanished. Records are `key=value` lines, written
atomically; a record that cannot be read or written is treated as absent, because it
is only ever a hint or a cache: so is one that is not a regular file (a FIFO would block
the agent), is not UTF-8 text, or has a line that is not `key=value`.
"""

from xenha.ocf.files import read_regular

# A record is a few short lines; anything larger is not one of ours.
RECORD_LIMIT = 65536


class ResourceRecord:
    __slots__ = ("path",)

    def __init__(self, rsctmp: str, agent: str, instance: str):
        safe = (instance or "unnamed").replace("/", "_")
        self.path = f"{rsctmp.rstrip('/')}/xenha-{agent}-{safe}"

    def read(self) -> dict:
        try:
            text = read_regular(self.path, RECORD_LIMIT).decode("utf-8")
        except (OSError, ValueError):
            return {}
        record = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if not sep or not key or not (key + value).isprintable():
                return {}   # not written by us: the whole record is suspect
            record[key] = value
        return record

    def write(self, record: dict) -> bool:
        import os  # writes happen in start/stop, not on the monitor path

        # Only what read() gives back: printable text, no "=" in a key.
        text = "".join(f"{key}={value}\n" for key, value in record.items()
                       if key and "=" not in key and f"{key}{value}".isprintable())
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
            return True
        except (OSError, ValueError):   # ValueError: text that is not UTF-8 (odd bytes)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False

    def remove(self) -> None:
        import os

        try:
            os.unlink(self.path)
        except OSError:
            pass
