"""The words of xl's live-migration stream, shared by the sender (`xl migrate`) and
the receiver (`xl migrate-receive`), and the way they are read and written.

The sender runs the receiver through a transport (ssh) and both speak over its stdio:
the receiver's BANNER; the saved domain (SAVE_MAGIC, a 4-byte big-endian length, the
payload); the receiver's READY; the sender's GO (the point of no return); the
receiver's REPORT followed by one status byte (0: started); after a failed start the
receiver sends GO back, granting the sender permission to resume its copy. During the
exchange the receiver holds the domain as NAME + INCOMING (paused) and the sender
renames its copy NAME + MIGRATEDAWAY just before GO.
"""

from __future__ import annotations

import os

BANNER = b"xl migration receiver ready, send binary domain data.\n"
READY = b"domain received, ready to unpause\0"
GO = b"domain is yours, you are cleared to unpause\0"
REPORT = b"my copy unpause results are as follows\0"
SAVE_MAGIC = b"Xen saved domain, xl format\n \0 \r"

INCOMING = "--incoming"
MIGRATEDAWAY = "--migratedaway"

# what xl prints when the stream breaks from GO on: nobody knows which copy runs
HANDSHAKE_FAILED = (
    "** Migration failed during final handshake **\n"
    "Domain state is now undefined !\n"
    "Please CHECK AT BOTH ENDS for running instances, before renaming and\n"
    " resuming at most one instance.  Two simultaneous instances of the domain\n"
    " would probably result in SEVERE DATA LOSS and it is now your\n"
    " responsibility to avoid that.  Sorry.\n"
)


def read_exact(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = os.read(fd, size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def write_all(fd: int, data: bytes) -> bool:
    try:
        while data:
            data = data[os.write(fd, data):]
        return True
    except OSError:
        return False
