"""Files of the simulated DRBD kernel: a record is written all or nothing (a temporary
file renamed over the old one) and read back whole, as marshal data; shared files are
guarded by flock(2) on a companion `.lock` file."""

from __future__ import annotations

import fcntl
import marshal
import os
import time


def read(path: str):
    """The record at `path`, or None when there is none (or it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None


def write(path: str, obj) -> None:
    """Write a record all or nothing; a record that did not change is left as it is
    (the kernel process rewrites unchanged records several times a second otherwise)."""
    data = marshal.dumps(obj)
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return
    except OSError:
        pass
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def makedirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def flock(path: str, wait: float | None = None) -> int | None:
    """An exclusive lock on `path` (created with its directory); close the fd to release.
    With `wait`, None when the lock was not had within that many seconds."""
    makedirs(os.path.dirname(path))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if wait is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.005)
