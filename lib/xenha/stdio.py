"""The standard descriptors of a program started without them.

DRBD's kernel starts its usermode helpers with no file descriptor open (seen on the real
DRBD 8.4 node: a handler writing to stderr died, exit 1, and DRBD refused every resync).
Python then has sys.stdin/stdout/stderr = None, and the first file the program opens
takes descriptor 0, 1 or 2 and receives what is meant for them. The handlers' launcher
(and the lab's simulated tools, which such handlers run) call this first.
"""

import os
import sys


def ensure_standard_fds() -> None:
    """Give each closed descriptor 0-2 /dev/null, with its Python stream on it (a C tool's
    writes to a closed descriptor just fail; this is the same, without the surprises)."""
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)   # the lowest free descriptor: this one
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))
