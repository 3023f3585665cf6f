"""`xenha-sim-drbd-kernel`: the simulated DRBD kernel of one node as a process, so that
time passes on its own, as with a real module.

    xenha-sim-drbd-kernel [--tick SECONDS]

Started on each node with the node's environment (the same XENHA_SIM_DRBD_* variables
as drbdsetup, or their defaults; inside the node's network namespace) and running until
it is killed: the lab starts it as a node boot service, so that it dies with the node.
It does what the module's threads do:

- the worker: every resource of the node is advanced (`advance.advance`) several times
  a second — handshakes, resync progress and its end, helper calls, connection loss —
  whether or not any command runs;
- the transport: for every connection that is not StandAlone it keeps a real TCP
  connection on the resource's path (the local address and DRBD port, to the peer's),
  and a link is up (`network.link_cut`) only while that connection lives, with DRBD's
  own timers from the connection's net options (drbd.conf(5), DRBD 9): after
  `ping-int` seconds (default 10) without traffic a ping is sent, and the link dies
  when its answer does not come within `ping-timeout` (tenths of a second, default 5 =
  0.5 s), or when a write waits longer than `timeout` for the peer's answer (tenths,
  default 60 = 6 s); a failed connection is tried again every `connect-int` seconds
  (default 10), the first try right away. A cut link, a partition, a node that lost
  power: whatever stops the packets ends the connection after those times, and it
  comes back once they flow again;
- protocol C acknowledgements: a writer on this node (`blockio.write_block`) asks over
  the unix socket `<state>/kernel.sock` for the peer's answer, which the transport
  obtains with a request on the link after the write was queued.

The messages on a link are lines. Both sides try every connect-int, as DRBD does; so
that one connection results, the side with the lower node-id makes it: it sends
`HELLO <resource> <its node-id> <peer node-id>` and gets `WELCOME` (or the connection
closed: no such resource or connection, or StandAlone); the other side's tries are a
`KNOCK` with the same words, on which the lower side tries at once. Then
`PING`/`PINGACK` and `ACKREQ n`/`ACK n`. Every resource's data still travels through
the shared directory (`network`): the link decides only whether, and when, the nodes
reach each other.

Deviations from the real transport: one TCP connection per path carries what DRBD
splits on a data and a control socket; ko-count is not applied; when one side drops a
connection the other learns it at once through the shared session record (as if its
FIN reached the peer), whatever the network does.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import sys
import threading
import time

from xenha_lab.sim.drbd import link, network, store
from xenha_lab.sim.drbd.advance import advance
from xenha_lab.sim.drbd.node import Node
from xenha_lab.sim.procs import pid_namespace, proc_start

TICK = 0.1                 # how often the worker advances every resource
RESCAN = 0.2               # how often the transport looks for new or gone connections
HELLO_WAIT = 5.0           # an accepted connection must introduce itself within this
# DRBD's defaults (drbd.conf(5)): seconds, tenths of a second, tenths, seconds
DEFAULTS = {"ping-int": 10, "ping-timeout": 5, "timeout": 60, "connect-int": 10}


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
    sys.stderr.write(f"{stamp} drbd-kernel: {message}\n")
    sys.stderr.flush()


class Timing:
    """A connection's timers in seconds, from its net options."""

    __slots__ = ("ping_int", "ping_timeout", "timeout", "connect_int")

    def __init__(self, nopts: dict):
        def value(key):
            try:
                return int(nopts.get(key, DEFAULTS[key]))
            except ValueError:
                return DEFAULTS[key]
        self.ping_int = float(value("ping-int"))
        self.ping_timeout = value("ping-timeout") / 10.0
        self.timeout = value("timeout") / 10.0
        self.connect_int = float(value("connect-int"))


class Wanted:
    """A path the node's configuration wants a link on."""

    __slots__ = ("res", "nid", "pid", "conn_name", "local", "peer", "timing")

    def __init__(self, res, pid, conn):
        self.res, self.nid, self.pid, self.conn_name = res.name, res.node_id, pid, conn.name
        self.local, self.peer = conn.paths[0]
        self.timing = Timing(conn.nopts)


def sockaddr(addr: str):
    """(family, (ip, port)) of a path address 'ipv4:A:P' / 'ipv6:[A]:P'."""
    family = socket.AF_INET6 if addr.startswith("ipv6:") else socket.AF_INET
    return family, (network.addr_ip(addr), int(addr.rsplit(":", 1)[1]))


class Link:
    """The TCP connection of one path, with DRBD's timers."""

    def __init__(self, want: Wanted):
        self.want = want
        self.key = link.link_key(want.local, want.peer)
        self.initiator = want.nid < want.pid
        self.sock = None
        self.state = "down"          # down | connecting | hello | up
        self.knock = None            # the higher node-id side's try: a socket that knocks
        self.rbuf = b""
        self.wbuf = b""
        self.last_rx = 0.0
        self.ping_sent = None
        self.started = 0.0           # the current connect attempt, or the hello wait
        self.next_try = 0.0          # the first try right away
        self.pending = {}            # request id -> (client, path key, sent at)
        self.since = time.time()


class Transport:
    """The node's links, listeners and writer requests, on one selector."""

    def __init__(self, node: Node, changed: threading.Event):
        self.node = node
        self.changed = changed       # wakes the worker when a link goes up or down
        self.sel = selectors.DefaultSelector()
        self.links: dict[str, Link] = {}
        self.listeners: dict[str, socket.socket] = {}   # local address -> listening socket
        self.newcomers = {}          # accepted socket -> (local address, deadline, buffer)
        self.clients = {}            # writer socket -> buffer
        self.next_id = 1
        self.last_scan = 0.0
        self.registered = {}
        self.control = None
        self.stopping = False
        self.listen_failed = set()   # local addresses whose listen error was logged

    # --- registration (what network.link_cut reads) ------------------------------------------
    def register(self) -> None:
        start = proc_start(os.getpid())
        self.registered = {"pid": os.getpid(), "start": start, "pidns": pid_namespace(), "links": {}}
        self.publish()

    def publish(self) -> None:
        self.registered["links"] = {key: [lk.state == "up", lk.since] for key, lk in self.links.items()}
        store.write(link.registration_path(self.node.state), self.registered)

    def set_state(self, lk: Link, state: str, why: str = "") -> None:
        was_up = lk.state == "up"
        lk.state = state
        if was_up != (state == "up"):
            lk.since = time.time()
            self.publish()
            self.changed.set()
            w = lk.want
            if state == "up":
                log(f"{w.res} {w.conn_name or w.pid}: link up ({w.local} - {w.peer})")
            else:
                log(f"{w.res} {w.conn_name or w.pid}: link down: {why}")

    # --- the writers' socket ---------------------------------------------------------------
    def open_control(self) -> None:
        path, fd = link.socket_dir_path(self.node.state)
        try:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
        finally:
            os.close(fd)
        sock.listen(64)
        sock.setblocking(False)
        self.control = sock
        self.sel.register(sock, selectors.EVENT_READ, ("control", None))

    def on_control(self) -> None:
        try:
            client, _ = self.control.accept()
        except OSError:
            return
        client.setblocking(False)
        self.clients[client] = b""
        self.sel.register(client, selectors.EVENT_READ, ("client", None))

    def on_client(self, client) -> None:
        data = _recv(client)
        if not data:
            self.drop_client(client)
            return
        buf = self.clients.get(client, b"") + data
        *lines, buf = buf.split(b"\n")
        self.clients[client] = buf
        for line in lines:
            words = line.decode(errors="replace").split()
            if len(words) == 3 and words[0] == "ack":
                self.request_ack(client, link.link_key(words[1], words[2]))

    def answer(self, client, status: str, key: str) -> None:
        if client not in self.clients:
            return
        try:
            client.sendall(f"{status} {key}\n".encode())
        except OSError:
            self.drop_client(client)

    def drop_client(self, client) -> None:
        self.clients.pop(client, None)
        for lk in self.links.values():
            for rid in [r for r, (c, _k, _t) in lk.pending.items() if c is client]:
                del lk.pending[rid]
        try:
            self.sel.unregister(client)
        except (KeyError, ValueError):
            pass
        client.close()

    def request_ack(self, client, key: str) -> None:
        lk = self.links.get(key)
        if lk is None or lk.state != "up":
            self.answer(client, "lost", key)
            return
        rid = self.next_id
        self.next_id += 1
        lk.pending[rid] = (client, key, time.monotonic())
        self.send(lk, f"ACKREQ {rid}\n")

    # --- which links the configuration wants ------------------------------------------------
    def scan(self) -> None:
        wanted = {}
        for res in self.node.all():
            for pid, conn in res.conns.items():
                if conn.cstate != "StandAlone" and conn.paths:
                    want = Wanted(res, pid, conn)
                    wanted[link.link_key(want.local, want.peer)] = want
        changed = False
        for key in [k for k in self.links if k not in wanted]:
            gone = self.links.pop(key)
            self.drop_knock(gone)
            self.close_link(gone, "connection no longer configured")
            changed = True
        for key, want in wanted.items():
            if key not in self.links:
                self.links[key] = Link(want)
                changed = True
            else:
                self.links[key].want = want
        for local in {w.local for w in wanted.values()} - set(self.listeners):
            self.listen(local)
        for local in set(self.listeners) - {w.local for w in wanted.values()}:
            sock = self.listeners.pop(local)
            self.sel.unregister(sock)
            sock.close()
        if changed:
            self.publish()

    def listen(self, local: str) -> None:
        family, address = sockaddr(local)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(16)
        except OSError as error:
            sock.close()
            if error.errno != errno.EADDRNOTAVAIL and local not in self.listen_failed:
                self.listen_failed.add(local)
                log(f"cannot listen on {local}: {error.strerror}")
            return      # the address is not (yet) on this node: tried again at the next scan
        self.listen_failed.discard(local)
        sock.setblocking(False)
        self.listeners[local] = sock
        self.sel.register(sock, selectors.EVENT_READ, ("listener", local))

    # --- connecting ------------------------------------------------------------------------
    def try_connect(self, lk: Link, now: float) -> None:
        """A try every connect-int: the lower node-id side connects, the other knocks."""
        family, address = sockaddr(lk.want.peer)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        lk.next_try = now + lk.want.timing.connect_int
        try:
            sock.bind((sockaddr(lk.want.local)[1][0], 0))
            code = sock.connect_ex(address)
        except OSError:
            code = -1
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return
        lk.started = now
        if not lk.initiator:
            lk.knock = sock
            self.sel.register(sock, selectors.EVENT_WRITE, ("knock", lk.key))
            return
        lk.sock, lk.rbuf, lk.wbuf = sock, b"", b""
        lk.state = "connecting"
        self.sel.register(sock, selectors.EVENT_WRITE, ("link", lk.key))

    def on_knock(self, lk: Link) -> None:
        """Our knock reached the peer's listener (or failed): say who knocks, hang up."""
        sock, lk.knock = lk.knock, None
        self.sel.unregister(sock)
        try:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                w = lk.want
                sock.send(f"KNOCK {w.res} {w.nid} {w.pid}\n".encode())
        except OSError:
            pass
        sock.close()

    def drop_knock(self, lk: Link) -> None:
        if lk.knock is not None:
            self.sel.unregister(lk.knock)
            lk.knock.close()
            lk.knock = None

    def on_connected(self, lk: Link) -> None:
        error = lk.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self.close_link(lk, os.strerror(error))
            return
        lk.state = "hello"
        lk.started = time.monotonic()
        self.sel.modify(lk.sock, selectors.EVENT_READ, ("link", lk.key))
        w = lk.want
        self.send(lk, f"HELLO {w.res} {w.nid} {w.pid}\n")

    def on_accept(self, local: str) -> None:
        try:
            sock, _ = self.listeners[local].accept()
        except OSError:
            return
        sock.setblocking(False)
        self.newcomers[sock] = (local, time.monotonic() + HELLO_WAIT, b"")
        self.sel.register(sock, selectors.EVENT_READ, ("newcomer", None))

    def on_newcomer(self, sock) -> None:
        local, deadline, buf = self.newcomers[sock]
        data = _recv(sock)
        if not data:
            self.drop_newcomer(sock)
            return
        buf += data
        if b"\n" not in buf:
            self.newcomers[sock] = (local, deadline, buf)
            return
        line, rest = buf.split(b"\n", 1)
        words = line.decode(errors="replace").split()
        lk = None
        try:
            peer_ip = sock.getpeername()[0]
        except OSError:
            words = []
        if len(words) == 4 and words[0] in ("HELLO", "KNOCK"):
            for candidate in self.links.values():
                w = candidate.want
                if (w.local == local and w.res == words[1] and str(w.pid) == words[2] and str(w.nid) == words[3]
                        and network.addr_ip(w.peer) == peer_ip):
                    lk = candidate
        if lk is not None and words[0] == "KNOCK" and lk.initiator:
            if lk.state == "down":
                lk.next_try = time.monotonic()      # the peer is there: try now
            lk = None
        if lk is None or lk.initiator:
            self.drop_newcomer(sock)      # DRBD closes connections it cannot place
            return
        self.drop_knock(lk)
        del self.newcomers[sock]
        self.sel.unregister(sock)
        if lk.sock is not None:
            self.close_link(lk, "the peer connected again")
        lk.sock, lk.rbuf, lk.wbuf = sock, rest, b""
        lk.last_rx, lk.ping_sent = time.monotonic(), None
        self.sel.register(sock, selectors.EVENT_READ, ("link", lk.key))
        self.send(lk, "WELCOME\n")
        self.set_state(lk, "up")
        self.handle_lines(lk)

    def drop_newcomer(self, sock) -> None:
        self.newcomers.pop(sock, None)
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    # --- traffic -----------------------------------------------------------------------------
    def send(self, lk: Link, text: str) -> None:
        if lk.sock is None:
            return
        lk.wbuf += text.encode()
        self.flush(lk)

    def flush(self, lk: Link) -> None:
        try:
            while lk.wbuf:
                sent = lk.sock.send(lk.wbuf)
                lk.wbuf = lk.wbuf[sent:]
        except BlockingIOError:
            pass
        except OSError as error:
            self.close_link(lk, error.strerror or "send failed")
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if lk.wbuf else 0)
        try:
            self.sel.modify(lk.sock, events, ("link", lk.key))
        except (KeyError, ValueError):
            pass

    def on_link(self, lk: Link, mask: int) -> None:
        if lk.state == "connecting":
            self.on_connected(lk)
            return
        if mask & selectors.EVENT_WRITE:
            self.flush(lk)
            if lk.sock is None:
                return
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = lk.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as error:
            self.close_link(lk, error.strerror or "receive failed")
            return
        if not data:
            self.close_link(lk, "connection closed by peer")
            return
        lk.rbuf += data
        lk.last_rx = time.monotonic()
        self.handle_lines(lk)

    def handle_lines(self, lk: Link) -> None:
        *lines, lk.rbuf = lk.rbuf.split(b"\n")
        for line in lines:
            words = line.decode(errors="replace").split()
            if not words or lk.sock is None:
                continue
            kind = words[0]
            if kind == "WELCOME" and lk.state == "hello":
                lk.ping_sent = None
                self.set_state(lk, "up")
            elif kind == "PING":
                self.send(lk, "PINGACK\n")
            elif kind == "PINGACK":
                lk.ping_sent = None
            elif kind == "ACKREQ" and len(words) == 2:
                self.send(lk, f"ACK {words[1]}\n")
            elif kind == "ACK" and len(words) == 2 and words[1].isdigit():
                entry = lk.pending.pop(int(words[1]), None)
                if entry:
                    self.answer(entry[0], "ok", entry[1])

    def close_link(self, lk: Link, why: str) -> None:
        if lk.sock is not None:
            try:
                self.sel.unregister(lk.sock)
            except (KeyError, ValueError):
                pass
            lk.sock.close()
        lk.sock, lk.rbuf, lk.wbuf, lk.ping_sent = None, b"", b"", None
        for client, key, _sent in lk.pending.values():
            self.answer(client, "lost", key)
        lk.pending.clear()
        self.set_state(lk, "down", why)

    # --- DRBD's timers -------------------------------------------------------------------------
    def timers(self) -> None:
        now = time.monotonic()
        for lk in list(self.links.values()):
            timing = lk.want.timing
            if lk.state == "down":
                if lk.knock is not None and now - lk.started >= timing.connect_int:
                    self.drop_knock(lk)
                if lk.knock is None and now >= lk.next_try:
                    self.try_connect(lk, now)
            elif lk.state == "connecting":
                if now - lk.started >= timing.connect_int:
                    self.close_link(lk, "connect timed out")
                    lk.next_try = now
            elif lk.state == "hello":
                if now - lk.started >= max(timing.timeout, HELLO_WAIT):
                    self.close_link(lk, "the peer did not answer the handshake")
            else:
                if lk.ping_sent is not None and now - lk.ping_sent > timing.ping_timeout:
                    self.close_link(lk, "PingAck did not arrive in time.")
                    lk.next_try = now
                elif any(now - sent > timing.timeout for _c, _k, sent in lk.pending.values()):
                    self.close_link(lk, "the peer did not answer a write within timeout")
                    lk.next_try = now
                elif lk.ping_sent is None and now - lk.last_rx >= timing.ping_int:
                    lk.ping_sent = now
                    self.send(lk, "PING\n")
        for sock, (_local, deadline, _buf) in list(self.newcomers.items()):
            if now >= deadline:
                self.drop_newcomer(sock)

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        self.open_control()
        while not self.stopping:
            now = time.monotonic()
            if now - self.last_scan >= RESCAN:
                self.last_scan = now
                try:
                    self.scan()
                except OSError as error:
                    log(f"cannot read the node's resources: {error}")
            for key, mask in self.sel.select(timeout=0.05):
                kind, ref = key.data
                if kind == "control":
                    self.on_control()
                elif kind == "client":
                    self.on_client(key.fileobj)
                elif kind == "listener":
                    self.on_accept(ref)
                elif kind == "newcomer":
                    self.on_newcomer(key.fileobj)
                elif kind == "knock" and ref in self.links and self.links[ref].knock is key.fileobj:
                    self.on_knock(self.links[ref])
                elif kind == "link" and ref in self.links:
                    self.on_link(self.links[ref], mask)
            self.timers()
        for lk in self.links.values():
            if lk.sock is not None:
                lk.sock.close()
                lk.state = "down"
        self.publish()


def _recv(sock) -> bytes:
    """What a socket has for us; b"" at its end or on an error."""
    try:
        return sock.recv(4096)
    except OSError:
        return b""


def worker(node: Node, changed: threading.Event, stopping: threading.Event, tick: float) -> None:
    """Advance every resource of the node, every `tick` or when a link changed."""
    while not stopping.is_set():
        for name in node.names():
            try:
                with node:
                    res = node.load(name)
                    if res is not None:
                        advance(node, res)
            except Exception as error:  # noqa: BLE001 - a kernel thread logs and carries on
                log(f"{name}: {type(error).__name__}: {error}")
        changed.wait(tick)
        changed.clear()


def already_running(state: str) -> int | None:
    data = store.read(link.registration_path(state))
    if data and data.get("pid") != os.getpid() and proc_start(data.get("pid", 0)) == data.get("start") \
            and data.get("pidns") == pid_namespace():
        return data["pid"]
    return None


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="xenha-sim-drbd-kernel",
                                     description="The simulated DRBD kernel of this node, running on its own.")
    parser.add_argument("--tick", type=float, default=TICK, help="seconds between two advances of every resource")
    args = parser.parse_args(argv)
    node = Node()
    store.makedirs(node.state)
    other = already_running(node.state)
    if other is not None:
        sys.stderr.write(f"xenha-sim-drbd-kernel: already running on this node (pid {other})\n")
        return 1
    changed, stopping = threading.Event(), threading.Event()
    # the transport reads the configuration with a Node of its own: the worker's holds the lock
    transport = Transport(Node(), changed)

    def stop(*_):
        transport.stopping = True
        stopping.set()
        changed.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    thread = threading.Thread(target=worker, args=(node, changed, stopping, max(0.01, args.tick)),
                              name="drbd-worker", daemon=True)
    log(f"started on node {node.token} (state {node.state})")
    try:
        transport.register()
        thread.start()
        transport.run()
    finally:
        stop()
        thread.join(timeout=5.0)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
