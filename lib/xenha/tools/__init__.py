"""One driver per external tool: argv building, timeouts, parsing into typed values.

Agents and handlers talk to these drivers only; nothing above this package spawns a
process (`runner` is the one place that does). Everything here runs on an agent's
monitor path, so it uses the standard library only and avoids heavy imports
(`subprocess`, `re`, `json`, `enum` each cost milliseconds).
"""


class ToolNotFound(Exception):
    """The command is not installed (not on PATH, or not executable).

    Defined here rather than in `runner` so that callers of any driver can tell "the
    tool is missing" apart from "the tool failed" without importing the runner.
    """

    def __init__(self, name: str):
        super().__init__(f"{name}: command not found")
        self.name = name


class ToolError(Exception):
    """A tool failed or printed something unreadable. Each driver has its subclass;
    `result` is the finished command (None when the failure is in its output)."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result
