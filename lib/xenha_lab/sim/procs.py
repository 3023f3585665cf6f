"""Processes the simulators keep records of (guests, the DRBD kernel process): whether a
recorded pid is still the process that was recorded (its start time), and which pid
namespace a pid belongs to (a pid means that process only within its namespace: a lab
node's pids are not the host's).

Standard library `os` only: `xl list` and drbdsetup's queries read these.
"""

from __future__ import annotations

import os


def proc_stat(pid: int):
    """(state letter, start time, utime+stime ticks) of a live pid, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()
    return fields[0], fields[19], int(fields[11]) + int(fields[12])


def proc_start(pid: int) -> str | None:
    """The start time of a pid that runs (not a zombie), None when it is gone."""
    stat = proc_stat(pid)
    return None if stat is None or stat[0] in "ZX" else stat[1]


def pid_namespace() -> str:
    """Our pid namespace (its inode), "" when unknown."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""
