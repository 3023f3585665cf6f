"""Pacemaker's command-line tools as agents use them (crm_attribute).

Only what runs inside agents lives here: standard library, bounded calls, typed answers.
"""

from xenha.tools import runner

# crm_attribute's exit code for a missing attribute or node ("No such device or address").
RC_NO_SUCH = 105


class CrmError(Exception):
    def __init__(self, message: str, result: runner.CommandResult | None = None):
        super().__init__(message)
        self.result = result


def node_attribute(node: str, name: str, timeout: float, env=None) -> str | None:
    """The permanent node attribute `name` of `node`; None when it is not set."""
    argv = ["crm_attribute", "--type", "nodes", "--node", node, "--name", name, "--query", "--quiet"]
    result = runner.run(argv, timeout, env=env)
    if result.returncode == RC_NO_SUCH and not result.timed_out:
        return None
    if not result.ok:
        raise CrmError(result.describe(), result)
    value = result.stdout.strip()
    return None if value in ("", "(null)") else value
