"""`Tool`: one executable a driver runs."""

from xenha.tools.binaries import ToolNotFound, which


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
        from xenha.tools import runner  # only when a command runs (see the package docstring)

        return runner.run([self.name, *args], timeout, env=self.env, stdin=stdin, executable=program)
