"""The two sockets of a lab's supervisor (standard library only: the fence agent uses it).

The power switch (DIR/switch/switch.sock, /run/xenha-lab/switch/switch.sock in every
node): one request line per connection, `ACTION [NODE]`, answered by one line
`OK TEXT` or `ERROR TEXT`. Actions: on, off, reboot, status (answers "on"/"off"), list
(answers the node names), monitor.

The control socket (DIR/control.sock, host only): one JSON object per line each way,
{"op": ...} -> {"ok": true, ...} | {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import socket

SWITCH_ACTIONS = ("on", "off", "reboot", "status", "list", "monitor")
NODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
MAX_LINE = 65536


def valid_node_name(name: str) -> bool:
    return 0 < len(name) <= 31 and name[0].isalpha() and name[0].islower() and set(name) <= NODE_CHARS


def exchange(path: str, line: bytes, timeout: float) -> bytes:
    """Send one line to the unix socket `path`, return the one line answered."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(line.rstrip(b"\n") + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(MAX_LINE)
            if not chunk:
                break
            data += chunk
            if len(data) > 16 * MAX_LINE:
                raise OSError("answer too long")
    return data.rstrip(b"\n")


def switch_request(path: str, action: str, node: str = "", timeout: float = 30.0) -> tuple[bool, str]:
    """(ok, text) from the power switch; OSError when it cannot be reached."""
    answer = exchange(path, f"{action} {node}".strip().encode(), timeout).decode(errors="replace")
    status, _, text = answer.partition(" ")
    if status not in ("OK", "ERROR"):
        raise OSError(f"unexpected answer from the power switch: {answer!r}")
    return status == "OK", text
