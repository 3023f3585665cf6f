"""Small per-resource records under `HA_RSCTMP` (tmpfs: lost at reboot, like domains are).

Agents remember facts between operations here (e.g. the domain name a resource started,
or the last promotion score written) so that later operations need not re-derive them
from files that may have changed or vanished. Records are `key=value` lines, written
atomically; a record that cannot be read or written is treated as absent, because it
is only ever a hint or a cache.
"""



class ResourceRecord:
    __slots__ = ("path",)

    def __init__(self, rsctmp: str, agent: str, instance: str):
        safe = (instance or "unnamed").replace("/", "_")
        self.path = f"{rsctmp.rstrip('/')}/xenha-{agent}-{safe}"

    def read(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return {}
        record = {}
        for line in lines:
            key, sep, value = line.partition("=")
            if sep:
                record[key] = value
        return record

    def write(self, record: dict) -> bool:
        import os  # writes happen in start/stop, not on the monitor path

        text = "".join(f"{key}={value}\n" for key, value in record.items()
                       if "\n" not in f"{key}{value}")
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
            return True
        except OSError:
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
