"""pcs (0.11) as provisioning uses it: a pcs command script applied to the live cluster
in one CIB transaction. Not on any agent's path.

The script (xenha's rendered pcs-commands.sh) runs against a copy of the live CIB
(`pcs cluster cib FILE`, then the script with PCS_FILE=FILE, which its `pcs` function
turns into `pcs -f FILE`); the result is pushed once with `pcs cluster cib-push FILE
diff-against=ORIGINAL`, so the cluster never acts on half a configuration (a domain
created before the constraints that place it), and a concurrent change made meanwhile
is kept (only the difference is pushed).
"""

import os
import tempfile
import xml.etree.ElementTree as ET

from xenha.tools.tool import Tool

TIMEOUT = 120.0


class PcsError(Exception):
    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class Pcs:
    def __init__(self, env=None):
        self.env = env
        self.pcs = Tool("pcs", env)

    def binaries(self) -> tuple:
        return (self.pcs, Tool("sh", self.env))

    def _checked(self, tool: Tool, args, timeout: float):
        result = tool.run(args, timeout)
        if not result.ok:
            raise PcsError(result.describe(), result)
        return result

    def apply_script(self, script: str, timeout: float = TIMEOUT) -> bool:
        """Run the script against a copy of the live CIB and push the difference; False
        when the script changed nothing in the configuration (nothing is pushed)."""
        with tempfile.TemporaryDirectory(prefix="xenha-pcs-") as work:
            original, changed, path = (os.path.join(work, name) for name in ("original.xml", "new.xml", "script.sh"))
            self._checked(self.pcs, ["cluster", "cib", original], timeout)
            with open(original, "rb") as source, open(changed, "wb") as target:
                target.write(source.read())
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(script)
            env = dict(self.env if self.env is not None else os.environ)
            env["PCS_FILE"] = changed
            result = Tool("sh", env).run([path], timeout)
            if not result.ok:
                raise PcsError(f"the pcs script failed: {result.said()}", result)
            if _configuration(original) == _configuration(changed):
                return False
            self._checked(self.pcs, ["cluster", "cib-push", changed, f"diff-against={original}"], timeout)
            return True


def _configuration(path: str) -> bytes:
    """The <configuration> section of a CIB file, serialised (what the script may change)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as error:
        raise PcsError(f"{path}: unreadable CIB: {error}") from None
    section = root.find("configuration")
    return ET.tostring(section) if section is not None else b""
