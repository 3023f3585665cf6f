"""Pacemaker's command-line tools as agents use them: node attributes, promotion scores
(crm_attribute) and the fencing constraints DRBD's handlers leave (cibadmin).

Only what runs inside agents lives here: standard library, bounded calls, typed answers.
A missing tool is a CrmError like any other failure: nothing an agent asks here may
fail its action (the callers decide what an unknown answer means).
"""

from xenha.tools import runner
from xenha.tools.binaries import ToolNotFound
from xenha.tools.tool import Tool

# crm_attribute's exit code for a missing attribute or node ("No such device or address").
RC_NO_SUCH = 105
# cibadmin --query --xpath with no match: 105 (ENXIO) in Pacemaker 2.1; 6 in older releases.
RC_NO_MATCH = (105, 6)
# How long one call may take at most (callers pass less when their deadline is nearer).
TIMEOUT = 10.0


class CrmError(Exception):
    """crm_attribute or cibadmin failed, or is not installed."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # the finished command (runner.CommandResult); None: unreadable output


class Crm:
    """crm_attribute and cibadmin, run with the agent's environment (CIB_file etc.)."""

    def __init__(self, env=None):
        self.env = env
        self.crm_attribute = Tool("crm_attribute", env)
        self.cibadmin = Tool("cibadmin", env)

    def binaries(self) -> tuple:
        return (self.crm_attribute, self.cibadmin)

    def _run(self, tool: Tool, args, timeout: float) -> runner.CommandResult:
        try:
            return tool.run(args, min(timeout, TIMEOUT))
        except ToolNotFound as missing:
            raise CrmError(str(missing)) from None

    def node_attribute(self, node: str, name: str, timeout: float) -> str | None:
        """The permanent node attribute `name` of `node`; None when it is not set."""
        result = self._run(self.crm_attribute,
                           ["--type", "nodes", "--node", node, "--name", name, "--query", "--quiet"], timeout)
        if result.returncode == RC_NO_SUCH and not result.timed_out:
            return None
        if not result.ok:
            raise CrmError(result.describe(), result)
        value = result.stdout.strip()
        return None if value in ("", "(null)") else value

    def set_promotion_score(self, score: int | None, node: str | None, timeout: float) -> None:
        """This clone instance's promotion score (`crm_attribute --promotion`, reboot
        lifetime) on `node` (None: the local node); a None score deletes it."""
        args = ["--promotion", "--lifetime", "reboot"]
        if node:
            args += ["--node", node]
        args += ["--delete"] if score is None else ["--update", str(score)]
        result = self._run(self.crm_attribute, args, timeout)
        if not result.ok:
            raise CrmError(result.describe(), result)

    def fencing_constraints(self, drbd_resource: str, timeout: float) -> list[str]:
        """The ids of the `drbd-fence-by-handler-<resource>-*` location constraints in the
        CIB (what drbd-utils' crm-fence-peer handlers create); [] when there are none.
        CrmError when the CIB cannot be asked."""
        if "'" in drbd_resource:   # it would end the XPath string literal
            raise CrmError(f"refusing to put {drbd_resource!r} into an XPath expression")
        xpath = f"//rsc_location[starts-with(@id,'drbd-fence-by-handler-{drbd_resource}-')]"
        result = self._run(self.cibadmin, ["--query", "--xpath", xpath], timeout)
        if result.ok and "<rsc_location" in result.stdout:
            return element_ids(result.stdout, "rsc_location")
        if result.ok or (not result.timed_out and result.returncode in RC_NO_MATCH) or "No such device" in result.stderr:
            return []
        raise CrmError(result.describe(), result)


def element_ids(xml: str, tag: str) -> list[str]:
    """The id attributes of every `<tag ...>` in a CIB fragment ("?" for one without an
    id). A scan, not an XML parser: monitors must not pay for importing ElementTree."""
    ids = []
    for piece in xml.split(f"<{tag}")[1:]:
        if piece[:1] not in (" ", "\t", "\n", ">", "/"):
            continue  # a longer tag name that starts the same
        attributes = piece.split(">", 1)[0]
        _before, found, rest = f" {attributes}".partition(' id="')
        ids.append(rest.split('"', 1)[0] if found else "?")
    return ids
