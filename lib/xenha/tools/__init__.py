"""One driver per external tool: argv building, timeouts, parsing into typed values.

Agents and handlers talk to these drivers only; nothing above this package spawns a
process (`runner` is the one place that does). Everything here runs on an agent's
monitor path, so it uses the standard library only and avoids heavy imports
(`subprocess`, `re`, `json`, `enum` each cost milliseconds).

This module holds what every driver shares: `Tool` (a binary a driver runs, found on
PATH), `which` and `ToolNotFound`. It imports no other module of ours: checking that a
binary is installed must not load the runner (the LVM agent's cheapest monitor starts
no process).
"""

import posix


class ToolNotFound(Exception):
    """The command is not installed (not on PATH, or not executable).

    Defined here rather than in `runner` so that callers of any driver can tell "the
    tool is missing" apart from "the tool failed" without importing the runner.
    """

    def __init__(self, name: str):
        super().__init__(f"{name}: command not found")
        self.name = name


def _is_executable_file(path: str) -> bool:
    try:
        mode = posix.stat(path).st_mode
    except OSError:
        return False
    return (mode & 0o170000) == 0o100000 and posix.access(path, posix.X_OK)


def which(name: str, path: str | None = None) -> str | None:
    """The path of an executable, like `command -v`; `path` defaults to this process's PATH."""
    if "/" in name:
        return name if _is_executable_file(name) else None
    if path is None:
        path = posix.environ.get(b"PATH", b"").decode("utf-8", "surrogateescape")
    for directory in path.split(":"):
        candidate = f"{directory or '.'}/{name}"
        if _is_executable_file(candidate):
            return candidate
    return None


class Tool:
    """One executable a driver runs: its name (or path), looked up once on the PATH
    of the environment the commands get, and run with that environment.

    Drivers declare theirs (`binaries()`), so that agents check one list in one place
    (`ResourceAgent.require`) instead of spelling the names out again.
    """

    __slots__ = ("name", "env", "_resolved")

    def __init__(self, name: str, env=None):
        self.name = name
        self.env = env
        self._resolved = None

    def path(self) -> str | None:
        """Where the executable is, or None when it is not installed."""
        if self._resolved is None:
            search = None if self.env is None else self.env.get("PATH", "")
            self._resolved = which(self.name, search) or ""
        return self._resolved or None

    def installed(self) -> bool:
        return self.path() is not None

    def run(self, args, timeout: float, stdin: bytes | None = None):
        """`name args...` for at most `timeout` seconds (a runner.CommandResult);
        ToolNotFound when not installed."""
        program = self.path()
        if program is None:
            raise ToolNotFound(self.name)
        from xenha.tools import runner  # the runner imports this package: not at the top

        return runner.run([self.name, *args], timeout, env=self.env, stdin=stdin, executable=program)
