"""The node's end of the host channel of xenha's real-kernel lab (standard library only).

Copied to the lab's share and run inside every node by its boot script:
`python3 -IS /share/node/agent.py`. It talks to the lab's supervisor on the host over a
virtio-serial port named `xenha.0` (one JSON object per line each way):

    host -> node  {"id": N, "op": "run", "argv": [...], "timeout": S, "input": "..."|null}
                  {"id": N, "op": "read", "path": "/abs/path"}
                  {"id": N, "op": "hello"}
                  {"op": "switch-answer", "id": N, "answer": "OK on"}
    node -> host  {"id": N, "rc": 0, "out": "...", "err": "...", "seconds": S, "timed_out": false}
                  {"id": N, "data": "<base64>"|null}
                  {"hello": {"boot": "<boot id>", "node": "n1", "phase": "up"}}
                  {"phase": "up"}                                (when the boot script's state changes)
                  {"switch": {"id": N, "line": "reboot n2"}}     (the fence agent asked the power switch)

Commands run with the node's clean environment (as pacemaker-execd's children), in a
session of their own, killed as a group when their time is up. The power switch socket
of the fast tier (/run/xenha-lab/switch/switch.sock) is served here and relayed to the
host, so that the lab's fence agent works unchanged.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

PORT_NAME = "xenha.0"
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "HOME": "/root", "TERM": "dumb"}
STATE_FILE = "/run/xenha-lab/state"
SWITCH_SOCKET = "/run/xenha-lab/switch/switch.sock"
MAX_OUTPUT = 8 << 20
MAX_READ = 16 << 20
MAX_TIMEOUT = 1800.0
SWITCH_TIMEOUT = 90.0


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} agent: {message}\n")
    sys.stderr.flush()


def find_port() -> str | None:
    """The /dev node of the virtio-serial port named PORT_NAME (no udev: by sysfs)."""
    base = "/sys/class/virtio-ports"
    try:
        names = os.listdir(base)
    except OSError:
        return None
    for port in names:
        try:
            with open(os.path.join(base, port, "name"), encoding="ascii") as handle:
                if handle.read().strip() == PORT_NAME:
                    return f"/dev/{port}"
        except OSError:
            continue
    return None


class Channel:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDWR)
        self.lock = threading.Lock()
        self.switch_waiters: dict[int, tuple[threading.Event, list]] = {}
        self.switch_ids = 0
        self.phase = None
        self.node = socket.gethostname()

    # --- writing --------------------------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self.lock:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self.fd, view)
                except InterruptedError:
                    continue
                view = view[written:]

    def hello(self) -> None:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
                boot = handle.read().strip()
        except OSError:
            boot = ""
        self.send({"hello": {"boot": boot, "node": socket.gethostname(), "phase": read_phase()}})

    # --- requests -------------------------------------------------------------------------------------------------
    def serve(self) -> None:
        buffer = b""
        self.hello()
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except InterruptedError:
                continue
            if not chunk:                     # the host is not connected: wait for it
                time.sleep(0.2)
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self.dispatch(line)
            if len(buffer) > MAX_OUTPUT:
                log("discarding an overlong request")
                buffer = b""

    def dispatch(self, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            log(f"unreadable request {line[:80]!r}")       # a partial line from an earlier connection
            return
        if not isinstance(request, dict):
            return
        op = request.get("op")
        if op == "hello":
            self.hello()
        elif op == "switch-answer":
            waiter = self.switch_waiters.get(request.get("id"))
            if waiter:
                waiter[1].append(str(request.get("answer", "ERROR no answer")))
                waiter[0].set()
        elif op in ("run", "read"):
            threading.Thread(target=self.answer, args=(request,), daemon=True).start()
        else:
            self.send({"id": request.get("id"), "error": f"unknown op {op!r}"})

    def answer(self, request: dict) -> None:
        try:
            reply = run(request) if request["op"] == "run" else read(request)
        except Exception as error:  # noqa: BLE001 - every request gets an answer
            reply = {"error": f"{type(error).__name__}: {error}"}
        reply["id"] = request.get("id")
        self.send(reply)

    # --- the power switch relay -------------------------------------------------------------------------------------
    def switch(self, line: str) -> str:
        with self.lock:
            self.switch_ids += 1
            ident = self.switch_ids
        event, answer = threading.Event(), []
        self.switch_waiters[ident] = (event, answer)
        try:
            self.send({"switch": {"id": ident, "line": line}})
            if not event.wait(SWITCH_TIMEOUT):
                return "ERROR the lab's host did not answer"
            return answer[0]
        finally:
            self.switch_waiters.pop(ident, None)

    def serve_switch(self) -> None:
        os.makedirs(os.path.dirname(SWITCH_SOCKET), exist_ok=True)
        try:
            os.unlink(SWITCH_SOCKET)
        except FileNotFoundError:
            pass
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(SWITCH_SOCKET)
        os.chmod(SWITCH_SOCKET, 0o600)
        server.listen(16)
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self.switch_connection, args=(conn,), daemon=True).start()

    def switch_connection(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10.0)
            data = b""
            try:
                while b"\n" not in data and len(data) < 4096:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                line = data.split(b"\n", 1)[0].decode(errors="replace").strip()
                conn.settimeout(SWITCH_TIMEOUT + 5)
                conn.sendall(self.switch(line).encode() + b"\n")
            except OSError as error:
                log(f"switch connection: {error}")

    # --- the boot script's progress -----------------------------------------------------------------------------------
    def watch_phase(self) -> None:
        while True:
            phase = read_phase()
            if phase != self.phase:
                self.phase = phase
                self.send({"phase": phase})
            time.sleep(0.5)


def read_phase() -> str:
    try:
        with open(STATE_FILE, encoding="ascii") as handle:
            return handle.read().strip() or "booting"
    except OSError:
        return "booting"


def run(request: dict) -> dict:
    argv = [str(a) for a in request.get("argv") or ()]
    if not argv:
        return {"error": "empty command"}
    timeout = min(float(request.get("timeout") or 60.0), MAX_TIMEOUT)
    data = request.get("input")
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(NODE_ENV), cwd="/",
                                start_new_session=True)
    except OSError as error:
        return {"rc": 127, "out": "", "err": f"{argv[0]}: {error.strerror}\n", "seconds": 0.0, "timed_out": False}
    timed_out = False
    try:
        out, err = proc.communicate(data.encode() if data is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
    return {"rc": proc.returncode, "out": out[:MAX_OUTPUT].decode(errors="replace"),
            "err": err[:MAX_OUTPUT].decode(errors="replace"), "seconds": round(time.monotonic() - started, 3),
            "timed_out": timed_out}


def read(request: dict) -> dict:
    path = str(request.get("path") or "")
    if not path.startswith("/"):
        return {"error": f"{path!r} is not an absolute path"}
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_READ)
    except OSError:
        return {"data": None}
    return {"data": base64.b64encode(data).decode("ascii")}


def main() -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    deadline = time.monotonic() + 60
    path = find_port()
    while path is None and time.monotonic() < deadline:
        time.sleep(0.2)
        path = find_port()
    if path is None:
        log(f"no virtio-serial port named {PORT_NAME}")
        return 1
    channel = Channel(path)
    log(f"serving on {path}")
    threading.Thread(target=channel.serve_switch, daemon=True, name="switch").start()
    threading.Thread(target=channel.watch_phase, daemon=True, name="phase").start()
    channel.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
