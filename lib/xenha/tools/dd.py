"""`dd` (coreutils) to prove that a block device answers reads.

In a child process on purpose: a read from dead storage can hang in the kernel, and the
caller's timeout must still hold (the child is killed, the caller is not stuck in D state).
"""

from xenha.tools.tool import Tool

# How long one read may take at most (callers pass less when their deadline is nearer).
READ_TIMEOUT = 10.0


class ReadError(Exception):
    """The device did not answer the read (or dd failed)."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # the finished command (runner.CommandResult); None: unreadable output


class Dd:
    def __init__(self, env=None):
        self.dd = Tool("dd", env)

    def binaries(self) -> tuple:
        return (self.dd,)

    def read_first_block(self, path: str, size: int, timeout: float) -> None:
        """Read `size` bytes at the start of `path`, bypassing the page cache (O_DIRECT);
        ReadError with dd's words when the device does not answer."""
        result = self.dd.run([f"if={path}", "of=/dev/null", f"bs={size}", "count=1", "iflag=direct"],
                             min(timeout, READ_TIMEOUT))
        if not result.ok:
            raise ReadError(result.said(), result)
