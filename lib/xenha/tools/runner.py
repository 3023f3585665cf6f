"""Run an external command with a hard timeout and capture its output.

Why not `subprocess`: importing it pulls in `locale`, `re` and `enum` and costs about
10 ms per agent invocation (measured with `python3 -X importtime`), more than the whole
monitor of the shell agent we replace. `os.posix_spawn` + `select.poll` give us the
same guarantees for the small set of features agents need (`select` is imported when
a command runs: the LVM agent's cheapest monitor runs none). For the same reason this
module uses `posix` (what `os` wraps): agents run with `python3 -S`, where nothing else
imports `os`, and `os` alone costs about 1 ms (stat, posixpath, collections.abc).

The child runs in its own process group, so a timeout kills it together with whatever
it started (e.g. the ssh transport of `xl migrate`). Locale is forced to C so that
output parsing does not depend on the node's language.
"""

import posix
import time

from xenha.tools.binaries import ToolNotFound, which

__all__ = ("CommandResult", "ToolNotFound", "last_line", "run", "which")

# Linux signal numbers (the `signal` module imports `enum`; see the module docstring).
SIGKILL = 9
SIGPIPE = 13
SIGTERM = 15
SIGXFSZ = 25

KILL_GRACE_SECONDS = 1.0
# After the child exited, how long to keep reading pipes that a grandchild still holds.
ORPHAN_PIPE_GRACE_SECONDS = 0.2


class CommandResult:
    """What a finished (or killed) command left behind."""

    __slots__ = ("argv", "returncode", "stdout", "stderr", "timed_out", "duration")

    def __init__(self, argv, returncode, stdout, stderr, timed_out, duration):
        self.argv = argv
        self.returncode = returncode  # negative: killed by that signal
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.duration = duration

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """A one-line account for exit reasons: command word(s), outcome, the tool's last
        words (full argv belongs in logs; exit reasons keep 128 characters)."""
        words = [self.argv[0].rpartition("/")[2]] + [a for a in self.argv[1:2] if not a.startswith("-")]
        cmd = " ".join(words)
        if self.timed_out:
            return f"{cmd} timed out after {self.duration:.1f}s"
        detail = last_line(self.stderr) or last_line(self.stdout)
        text = f"{cmd} exited with {self.returncode}"
        return f"{text}: {detail}" if detail else text

    def said(self) -> str:
        """The tool's own last words on stderr, else `describe()` (for exit reasons)."""
        return last_line(self.stderr) or self.describe()

    def __repr__(self) -> str:
        return f"CommandResult({self.describe()!r})"


def last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


def run(argv, timeout: float, *, env=None, stdin: bytes | None = None,
        path: str | None = None, executable: str | None = None) -> CommandResult:
    """Run `argv` for at most `timeout` seconds.

    Raises ToolNotFound when argv[0] cannot be found. Never raises on a non-zero exit
    or a timeout: the result says what happened. `executable` is argv[0] already
    looked up (by a `xenha.tools.Tool`): the child still sees argv[0] as given.
    """
    if env is None:
        from xenha.ocf.environment import process_environ
        env = process_environ()
    if executable is None:
        executable = which(argv[0], path if path is not None else env.get("PATH", ""))
    if executable is None:
        raise ToolNotFound(argv[0])
    child_env = dict(env)
    child_env["LC_ALL"] = "C"

    out_r, out_w = posix.pipe()
    err_r, err_w = posix.pipe()
    in_r = in_w = None
    actions = [(posix.POSIX_SPAWN_DUP2, out_w, 1), (posix.POSIX_SPAWN_DUP2, err_w, 2)]
    if stdin is None:
        actions.append((posix.POSIX_SPAWN_OPEN, 0, "/dev/null", posix.O_RDONLY, 0))
    else:
        in_r, in_w = posix.pipe()
        actions.append((posix.POSIX_SPAWN_DUP2, in_r, 0))
    started = time.monotonic()
    try:
        pid = posix.posix_spawn(executable, list(argv), child_env, file_actions=actions,
                             setpgroup=0, setsigdef=(SIGPIPE, SIGXFSZ))
    finally:
        posix.close(out_w)
        posix.close(err_w)
        if in_r is not None:
            posix.close(in_r)
    if in_w is not None:
        _feed(in_w, stdin)
    return _collect(argv, pid, out_r, err_r, started, started + max(0.0, timeout))


def _feed(fd: int, data: bytes) -> None:
    # Small inputs only (configs, commands); a child that does not read gets EPIPE.
    try:
        view = memoryview(data)
        while view:
            written = posix.write(fd, view)
            view = view[written:]
    except OSError:
        pass
    finally:
        posix.close(fd)


def _collect(argv, pid: int, out_r: int, err_r: int, started: float, end: float) -> CommandResult:
    import select  # here, not at the top: a monitor that runs no command never pays for it

    chunks = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    open_fds = set(chunks)
    status = None
    exited_at = None
    timed_out = False
    nap = 0.0002
    while True:
        if status is None:
            done, raw = posix.waitpid(pid, posix.WNOHANG)
            if done:
                status, exited_at = raw, time.monotonic()
        now = time.monotonic()
        if not open_fds and status is not None:
            break
        if status is not None and now - exited_at > ORPHAN_PIPE_GRACE_SECONDS:
            break  # a grandchild keeps our pipes open; the command itself is done
        if now >= end:
            timed_out = True
            status = _kill_group(pid)
            break
        wait = min(end - now, 0.1)
        if open_fds:
            for fd, _event in poller.poll(wait * 1000):
                data = posix.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
        else:
            # Output closed, exit status not there yet: the exit is usually microseconds
            # away, so poll waitpid quickly at first, then back off.
            time.sleep(min(wait, nap))
            nap = min(nap * 2, 0.01)
    for fd in (out_r, err_r):
        if fd in open_fds:
            _drain_nonblocking(fd, chunks[fd])
        posix.close(fd)
    if posix.WIFEXITED(status):
        returncode = posix.WEXITSTATUS(status)
    elif posix.WIFSIGNALED(status):
        returncode = -posix.WTERMSIG(status)
    else:
        returncode = -1
    return CommandResult(
        list(argv), returncode,
        b"".join(chunks[out_r]).decode("utf-8", "replace"),
        b"".join(chunks[err_r]).decode("utf-8", "replace"),
        timed_out, time.monotonic() - started,
    )


def _drain_nonblocking(fd: int, sink: list) -> None:
    posix.set_blocking(fd, False)
    try:
        while True:
            data = posix.read(fd, 65536)
            if not data:
                return
            sink.append(data)
    except BlockingIOError:
        return
    except OSError:
        return


def _kill_group(pid: int) -> int:
    """TERM the command's process group, KILL it after a grace period; its wait status."""
    for sig, grace in ((SIGTERM, KILL_GRACE_SECONDS), (SIGKILL, 5.0)):
        try:
            posix.killpg(pid, sig)
        except ProcessLookupError:
            pass
        give_up = time.monotonic() + grace
        while time.monotonic() < give_up:
            done, raw = posix.waitpid(pid, posix.WNOHANG)
            if done:
                return raw
            time.sleep(0.01)
    _done, raw = posix.waitpid(pid, 0)
    return raw
