"""What a node's running kernel process (`kernel`) tells the rest of the simulator about
its network links, and how a writer asks it for a protocol-C acknowledgement.

The kernel process registers itself in the node's volatile state directory:

    <state>/kernel        {"pid", "start", "pidns", "links": {"<local> <peer>": [up, since]}}
                          (one entry per path it keeps a TCP connection on; written
                          all or nothing whenever a link changes)
    <state>/kernel.sock   a unix socket: a writer sends `ack <local> <peer>` and gets
                          `ok <local> <peer>` once the peer's kernel answered a request
                          sent after the write was queued, or `lost <local> <peer>` when
                          the link is down or died first (after DRBD's `timeout`)

Without a registration (the test worlds that run no kernel process) nothing here
applies and links follow the cut files alone. A registration whose process is gone
is a node whose DRBD kernel does not run: none of its links is up.

Standard library `os` at import time: `network.link_cut` reads the registration on the
drbdsetup query path; the client imports `socket` when a write asks for an ack.
"""

from __future__ import annotations

import os

from xenha_lab.sim.drbd import store
from xenha_lab.sim.procs import pid_namespace, proc_start

REGISTRATION = "kernel"
SOCKET = "kernel.sock"


def registration_path(state: str) -> str:
    return os.path.join(state, REGISTRATION)


def kernel_links(state: str) -> dict | None:
    """{"<local> <peer>": up} of the node's kernel process; None when the node runs
    none (lazy evaluation); {} when its kernel process is registered but dead (checked
    from within its pid namespace; from another one the table is taken as it is)."""
    data = store.read(registration_path(state))
    if not data:
        return None
    if data.get("pidns") == pid_namespace() and proc_start(data.get("pid", 0)) != data.get("start"):
        return {}
    return {key: bool(value[0]) for key, value in data.get("links", {}).items()}


def link_key(local: str, peer: str) -> str:
    return f"{local} {peer}"


def socket_dir_path(state: str):
    """A short path naming the node's kernel socket (an O_PATH descriptor of the state
    directory: a unix socket path is limited to 108 bytes, test directories are long).
    Returns (path, fd); the caller closes fd."""
    fd = os.open(state, os.O_PATH | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{SOCKET}", fd


def round_trip(state: str, pairs, wait: float) -> set:
    """Ask the node's kernel for an acknowledgement from the peer of each path in
    `pairs` [(local, peer)]; the set of paths whose peer answered. Waits at most `wait`
    seconds in all (the kernel itself gives up after the link's `timeout`)."""
    import socket
    import time

    acked = set()
    if not pairs:
        return acked
    try:
        path, fd = socket_dir_path(state)
    except OSError:
        return acked
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(wait)
        client.connect(path)
        client.sendall("".join(f"ack {local} {peer}\n" for local, peer in pairs).encode())
        deadline = time.monotonic() + wait
        buf = b""
        answers = 0
        while answers < len(pairs):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            client.settimeout(left)
            chunk = client.recv(4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                words = line.decode().split()
                answers += 1
                if len(words) == 3 and words[0] == "ok":
                    acked.add((words[1], words[2]))
    except OSError:
        pass
    finally:
        client.close()
        os.close(fd)
    return acked
