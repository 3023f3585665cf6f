"""The few Linux calls the lab needs that Python 3.11 lacks, and process identity.

mount(2) and unshare(2) through ctypes (Python 3.11 has neither os.unshare nor a mount
call); a process is identified by pid *and* start time *and* command line, so that a
recorded pid that the kernel has since given to another process is never signalled.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import time
from dataclasses import dataclass

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
CLONE_NEWNET = 0x40000000

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target} ({fstype or 'bind'})")


def unshare(flags: int) -> None:
    _check(_c().unshare(ctypes.c_int(flags)), "unshare")


# --- process identity ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcessId:
    """A process as the lab recorded it: pid, start time (clock ticks after boot) and a
    string its command line must contain."""
    pid: int
    start: int
    marker: str

    def to_json(self) -> dict:
        return {"pid": self.pid, "start": self.start, "marker": self.marker}

    @classmethod
    def from_json(cls, data) -> "ProcessId | None":
        try:
            return cls(int(data["pid"]), int(data["start"]), str(data["marker"]))
        except (TypeError, KeyError, ValueError):
            return None


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[19])


def cmdline(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def identify(pid: int, marker: str) -> ProcessId | None:
    """Record `pid` if its command line contains `marker`."""
    start, line = start_time(pid), cmdline(pid)
    if start is None or line is None or marker not in line:
        return None
    return ProcessId(pid, start, marker)


def is_alive(proc: ProcessId) -> bool:
    """True only if the recorded process still exists (same pid, start time, command line).
    A zombie counts as gone."""
    if start_time(proc.pid) != proc.start:
        return False
    line = cmdline(proc.pid)
    return bool(line) and proc.marker in line


def signal_checked(proc: ProcessId, sig: int) -> bool:
    """Send `sig` to the recorded process, and only to it; False if it is gone."""
    if not is_alive(proc):
        return False
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(proc: ProcessId, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(proc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_checked(proc: ProcessId, term_timeout: float, kill_timeout: float = 5.0) -> bool:
    """SIGTERM, bounded wait, SIGKILL, bounded wait. True when the process is gone."""
    if signal_checked(proc, signal.SIGTERM) and wait_gone(proc, term_timeout):
        return True
    signal_checked(proc, signal.SIGKILL)
    return wait_gone(proc, kill_timeout)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def namespace_id(pid: int, kind: str = "net") -> str | None:
    """'net:[4026532…]' for the process's namespace of `kind`, or None."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


# --- loop devices ---------------------------------------------------------------------------------------------------

def loop_devices_under(directory: str) -> list[tuple[str, str]]:
    """[(/dev/loopN, backing file)] of the loop devices whose backing file lies under
    `directory` (only those are the lab's to detach), then those backed by one of these
    (the simulated LVs on a node's disk), the latter first: they go first."""
    prefix = os.path.realpath(directory).rstrip("/") + "/"
    direct = [(dev, backing) for dev, backing in _loop_devices() if backing.startswith(prefix)]
    devices = {dev for dev, _backing in direct}
    stacked = [(dev, backing) for dev, backing in _loop_devices() if backing in devices]
    return stacked + direct


def _loop_devices() -> list[tuple[str, str]]:
    """[(/dev/loopN, backing file without a " (deleted)" mark)] of every bound loop device."""
    found = []
    try:
        names = os.listdir("/sys/block")
    except OSError:
        return found
    for name in names:
        if not name.startswith("loop"):
            continue
        try:
            with open(f"/sys/block/{name}/loop/backing_file", encoding="utf-8", errors="replace") as handle:
                backing = handle.read().strip()
        except OSError:
            continue
        if backing:
            found.append(("/dev/" + name, backing.removesuffix(" (deleted)")))
    return found


def mounts_mentioning(text: str, pid: int | str = "self") -> list[str]:
    """Lines of /proc/PID/mountinfo that mention `text` (a lab directory)."""
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in handle if text in line]
    except OSError as error:
        # a process ending meanwhile: gone (ENOENT, ESRCH) or a zombie without mounts (EINVAL)
        if error.errno in (errno.ENOENT, errno.ESRCH, errno.EACCES, errno.EINVAL):
            return []
        raise
