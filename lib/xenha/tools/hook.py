"""Programs the operator names in a configuration (the Xen agent's `monitor_scripts`,
the resync handler's `--then`): run with arguments, bounded by a timeout.

They are not tools with an output format to parse: the caller gets the exit status and
the program's last words. A program that is not there raises `ToolNotFound`.
"""

from xenha.tools import runner


class HookResult:
    """How an operator's program ended."""

    __slots__ = ("returncode", "timed_out", "last_words", "summary")

    def __init__(self, result: runner.CommandResult):
        self.returncode = result.returncode   # negative: killed by that signal
        self.timed_out = result.timed_out
        # its last line on stderr, else on stdout ("" when it said nothing)
        self.last_words = runner.last_line(result.stderr) or runner.last_line(result.stdout)
        self.summary = result.describe()       # one line for exit reasons

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_hook(argv, timeout: float, env=None) -> HookResult:
    """Run `argv` (an executable and its arguments, no shell) for at most `timeout` seconds."""
    return HookResult(runner.run(list(argv), timeout, env=env))
