"""The host side of a namespace lab: one process that owns everything the lab runs.

    python3 -IS -c '…main()' --lab-dir=DIR

It lives in a network namespace of its own (the lab's "hub": the bridges every node's
veth plugs into; no address of the host is used or seen), is the parent of every node
(a node dies with it: setpriv --pdeathsig + unshare --kill-child), and serves

- the power switch (DIR/switch/switch.sock, seen by every node): what the fence agent
  asks for, on/off/reboot/status/list/monitor, and
- the control socket (DIR/control.sock, host only): what `xenha lab` asks for: status,
  power, cut/restore a node's link, partition/heal the network, shutdown.

It ends by itself after the lab's lifetime (stopping every node), and on SIGTERM. It
signals only the node inits it started, identified by pid, start time and command line.
A power cut is SIGKILL of a node's init: the kernel ends every process of the node; then
the simulators' power-lost hooks run and the node's RAM directory is wiped.

Single-threaded (asyncio): the parent-death signal of a node follows the thread that
started it, so every node is started from the one thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

from xenha_lab.lab import hooks
from xenha_lab.lab import layout as L
from xenha_lab.lab import linux
from xenha_lab.lab.protocol import MAX_LINE, SWITCH_ACTIONS, valid_node_name
from xenha_lab.paths import DEFAULT_PATH, child_code

CLEAN_ENV = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
REBOOT_PAUSE = 1.0          # seconds without power during a reboot
SPAWN_TIMEOUT = 10.0
POWER_OFF_TIMEOUT = 15.0
EVENTS_KEPT = 500


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
    sys.stderr.write(f"{stamp} supervisor: {message}\n")
    sys.stderr.flush()


def supervisor_marker(directory: str) -> str:
    """What the supervisor's command line contains (its last argument, then the NUL
    that /proc shows as a space)."""
    return f" --lab-dir={directory} "


def supervisor_argv(directory: str) -> list[str]:
    code = child_code("from xenha_lab.lab.supervisor import main; sys.exit(main())")
    return [sys.executable, "-IS", "-c", code, f"--lab-dir={directory}"]


class CommandFailed(Exception):
    pass


def run(argv, input: str | None = None, timeout: float = 10.0) -> str:
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=CLEAN_ENV)
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"`{' '.join(argv)}` did not finish in {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise CommandFailed(f"`{' '.join(argv)}` failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


class Node:
    def __init__(self, spec: L.NodeSpec):
        self.spec = spec
        self.name = spec.name
        self.wrapper: subprocess.Popen | None = None
        self.init: linux.ProcessId | None = None
        self.netns: str | None = None
        self.pidns: str | None = None
        self.power = "off"
        self.boots = 0
        self.link = "up"
        self.segment = 0
        self.lock = asyncio.Lock()

    @property
    def veth(self) -> str:
        return f"vn{self.spec.nodeid}"

    @property
    def addresses(self) -> tuple:
        return (self.spec.address, *[a.split("/")[0] for a in self.spec.extra_addresses])


class Supervisor:
    def __init__(self, directory: str):
        self.lay = L.Layout(directory)
        self.spec = self.lay.read_spec()
        self.nodes = {spec.name: Node(spec) for spec in self.spec.nodes}
        self.events: list[dict] = []
        self.bridges: set[int] = set()
        self.started = time.time()
        self.expires = self.started + self.spec.lifetime_s
        self.done: asyncio.Event | None = None
        self.stopping = False
        self.ready = False              # every node has been powered on once (or failed to)
        self.me = linux.identify(os.getpid(), supervisor_marker(self.lay.dir))
        self.hub: str | None = None

    # --- bookkeeping --------------------------------------------------------------------------------------------
    def event(self, what: str, node: str | None = None, by: str = "lab", **extra) -> None:
        entry = {"time": round(time.time(), 3), "what": what, "node": node, "by": by, **extra}
        self.events.append(entry)
        del self.events[:-EVENTS_KEPT]
        log(f"{what} {node or ''} (by {by})" + (f" {extra}" if extra else ""))

    def node_phase(self, node: Node) -> str:
        if node.power != "on":
            return "off"
        try:
            with open(os.path.join(self.lay.ram(node.name), "xenha-lab", "state"), encoding="utf-8") as handle:
                return handle.read().strip() or "booting"
        except OSError:
            return "booting"

    def status(self) -> dict:
        nodes = []
        for node in self.nodes.values():
            nodes.append({"name": node.name, "address": node.spec.address,
                          "addresses": [node.spec.address, *node.spec.extra_addresses],
                          "power": node.power, "phase": self.node_phase(node), "booted": self.node_phase(node) == "up",
                          "link": node.link, "segment": node.segment, "boots": node.boots,
                          "init": node.init.to_json() if node.init else None, "netns": node.netns})
        return {"ok": True, "dir": self.lay.dir, "pid": os.getpid(), "hub_netns": self.hub, "ready": self.ready,
                "started": self.started, "expires": self.expires, "stopping": self.stopping,
                "nodes": nodes, "events": self.events}

    def write_state(self) -> None:
        state = self.status()
        state["supervisor"] = self.me.to_json() if self.me else None
        try:
            L.write_atomic(self.lay.state_file, json.dumps(state, indent=1) + "\n")
        except OSError as error:
            log(f"cannot write {self.lay.state_file}: {error}")

    # --- the network ------------------------------------------------------------------------------------------------
    def ensure_bridge(self, segment: int) -> str:
        bridge = f"br{segment}"
        if segment not in self.bridges:
            run(["ip", "link", "add", bridge, "type", "bridge"])
            run(["ip", "link", "set", bridge, "up"])
            self.bridges.add(segment)
        return bridge

    def wire(self, node: Node) -> None:
        """Plug a freshly booted node into its segment: a veth pair, eth0 inside the node."""
        assert node.init is not None
        bridge = self.ensure_bridge(node.segment)
        # the previous boot's pair goes with its network namespace, which the kernel frees
        # asynchronously: make sure it is gone
        subprocess.run(["ip", "link", "del", node.veth], capture_output=True, timeout=10, env=CLEAN_ENV)
        run(["ip", "link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", str(node.init.pid)])
        run(["ip", "link", "set", node.veth, "master", bridge])
        if node.link == "up":
            run(["ip", "link", "set", node.veth, "up"])
        batch = ["link set lo up", f"address add {node.spec.address}/{L.NETWORK.prefixlen} dev eth0"]
        batch += [f"address add {extra} dev eth0" for extra in node.spec.extra_addresses]
        batch.append("link set eth0 up")
        run(["nsenter", f"--net=/proc/{node.init.pid}/ns/net", "ip", "-batch", "-"], input="\n".join(batch) + "\n")

    def apply_links(self) -> None:
        """Put every powered node's veth on its segment's bridge, up or down (the
        simulated DRBD kernels' TCP links follow by themselves)."""
        for node in self.nodes.values():
            if node.power != "on":
                continue
            bridge = self.ensure_bridge(node.segment)
            run(["ip", "link", "set", node.veth, "master", bridge])
            run(["ip", "link", "set", node.veth, "up" if node.link == "up" else "down"])

    def partition(self, groups) -> None:
        seen = set()
        for group in groups:
            for name in group:
                if name not in self.nodes:
                    raise CommandFailed(f"no node {name!r} in this lab")
                if name in seen:
                    raise CommandFailed(f"node {name} named in two groups")
                seen.add(name)
        for node in self.nodes.values():
            node.segment = 0
        for index, group in enumerate(groups, start=1):
            for name in group:
                self.nodes[name].segment = index
        self.apply_links()
        self.event("partition", by="operator", groups=[list(g) for g in groups])

    def set_link(self, name: str, state: str) -> None:
        self.node_named(name).link = state
        self.apply_links()
        self.event("cut" if state == "cut" else "restore", name, by="operator")

    def heal(self) -> None:
        for node in self.nodes.values():
            node.segment, node.link = 0, "up"
        self.apply_links()
        self.event("heal", by="operator")

    # --- power ----------------------------------------------------------------------------------------------------
    def node_named(self, name: str) -> Node:
        if name not in self.nodes:
            raise CommandFailed(f"no node {name!r} in this lab (nodes: {', '.join(self.nodes)})")
        return self.nodes[name]

    def wipe_ram(self, node: Node) -> None:
        ram = self.lay.ram(node.name)
        for entry in os.listdir(ram):
            path = os.path.join(ram, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    async def power_on(self, node: Node, by: str) -> None:
        async with node.lock:
            if node.power == "on":
                return
            if self.stopping:
                raise CommandFailed("the lab is shutting down")
            self.wipe_ram(node)
            plan = self.lay.plan(node.name)
            read_end, write_end = os.pipe()
            code = child_code("from xenha_lab.lab.node_init import main; sys.exit(main())")
            argv = ["setpriv", "--pdeathsig", "KILL", "--",
                    "unshare", "--net", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child=SIGKILL",
                    "--mount-proc", "--propagation", "private", "--",
                    sys.executable, "-IS", "-c", code, plan, str(read_end)]
            console = open(self.lay.console(node.name), "ab")
            try:
                node.wrapper = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console,
                                                stderr=subprocess.STDOUT, pass_fds=(read_end,), env=CLEAN_ENV,
                                                start_new_session=True)
            finally:
                console.close()
                os.close(read_end)
            try:
                node.init = await self._find_init(node, plan + " ")
                node.netns = linux.namespace_id(node.init.pid, "net")
                node.pidns = linux.namespace_id(node.init.pid, "pid")
                node.power = "on"
                node.boots += 1
                self.wire(node)
                os.write(write_end, b"go\n")
            except BaseException as error:
                log(f"boot of {node.name} failed: {error}")
                await self._kill(node)
                raise CommandFailed(f"{node.name} did not boot: {error}") from None
            finally:
                os.close(write_end)
            self.event("on", node.name, by=by, pid=node.init.pid, netns=node.netns)
            self.write_state()

    async def _find_init(self, node: Node, marker: str) -> linux.ProcessId:
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while time.monotonic() < deadline:
            if node.wrapper.poll() is not None:
                raise CommandFailed(f"unshare exited with {node.wrapper.returncode} "
                                    f"(see {self.lay.console(node.name)})")
            for pid in linux.children(node.wrapper.pid):
                found = linux.identify(pid, marker)
                if found:
                    return found
            await asyncio.sleep(0.01)
        raise CommandFailed("its init process did not appear")

    async def _kill(self, node: Node) -> None:
        """SIGKILL the node's init (the whole PID namespace dies) and wait for it."""
        if node.init is not None:
            linux.signal_checked(node.init, signal.SIGKILL)
        elif node.wrapper is not None and node.wrapper.poll() is None:
            node.wrapper.kill()
        deadline = time.monotonic() + POWER_OFF_TIMEOUT
        while node.wrapper is not None and node.wrapper.poll() is None:
            if time.monotonic() >= deadline:
                log(f"{node.name}: its unshare process did not end after the power cut")
                break
            await asyncio.sleep(0.01)
        node.power, node.init, node.netns, node.pidns, node.wrapper = "off", None, None, None, None

    async def power_off(self, node: Node, by: str) -> None:
        async with node.lock:
            if node.power == "off":
                self.event("off", node.name, by=by, already=True)
                return
            await self._kill(node)
            dead = hooks.DeadNode(name=node.name, addresses=node.addresses,
                                  ram=self.lay.ram(node.name), disk=self.lay.disk(node.name),
                                  shared=self.lay.shared, drbd_net=self.lay.drbd_net)
            applied = hooks.power_lost(dead, log)
            self.wipe_ram(node)
            self.event("off", node.name, by=by, hooks=applied)
            self.write_state()

    async def reboot(self, node: Node, by: str) -> None:
        await self.power_off(node, by)
        await asyncio.sleep(REBOOT_PAUSE)
        await self.power_on(node, by)

    async def stop_node(self, node: Node, timeout: float) -> None:
        """Orderly shutdown (SIGTERM to its init), a power cut when it takes too long."""
        async with node.lock:
            if node.power == "off":
                return
            started = time.monotonic()
            if node.init is not None and linux.signal_checked(node.init, signal.SIGTERM):
                deadline = started + timeout
                ticks = 0
                while node.wrapper.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    ticks += 1
                    if ticks % 5 == 0:
                        # again: an init still starting Python has no signal mask yet, and
                        # PID 1 ignores a signal it does not handle
                        linux.signal_checked(node.init, signal.SIGTERM)
                if node.wrapper.poll() is None:
                    log(f"{node.name} did not shut down in {timeout:.0f} s: power cut")
                else:
                    log(f"{node.name} shut down in {time.monotonic() - started:.1f} s")
        await self.power_off(node, by="shutdown")

    # --- requests ---------------------------------------------------------------------------------------------------
    def peer_node(self, writer) -> str:
        """Which node's process is on the other end of a switch connection (by its PID
        namespace), for the record."""
        sock = writer.get_extra_info("socket")
        try:
            pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        except OSError:
            return "unknown"
        pidns = linux.namespace_id(pid, "pid")
        for node in self.nodes.values():
            if node.pidns and node.pidns == pidns:
                return node.name
        return "host"

    async def switch(self, line: str, asker: str) -> str:
        words = line.split()
        if not words or words[0] not in SWITCH_ACTIONS:
            return f"ERROR unknown request {line[:80]!r} (actions: {', '.join(SWITCH_ACTIONS)})"
        action, args = words[0], words[1:]
        if action == "list":
            return "OK " + " ".join(self.nodes)
        if action == "monitor":
            return "OK ready"
        if len(args) != 1 or not valid_node_name(args[0]):
            return f"ERROR {action} needs one node name"
        if args[0] not in self.nodes:
            return f"ERROR no node {args[0]!r} in this lab (nodes: {', '.join(self.nodes)})"
        node = self.nodes[args[0]]
        by = f"fence-agent@{asker}"
        try:
            if action == "status":
                return f"OK {node.power}"
            if action == "off":
                await self.power_off(node, by)
            elif action == "on":
                await self.power_on(node, by)
            else:
                await self.reboot(node, by)
        except CommandFailed as error:
            return f"ERROR {error}"
        return f"OK {node.power}"

    async def control(self, request: dict) -> dict:
        op = request.get("op")
        try:
            if op == "status":
                return self.status()
            if op == "power":
                node, action = self.node_named(str(request.get("node"))), request.get("action")
                handler = {"on": self.power_on, "off": self.power_off, "reboot": self.reboot}.get(action)
                if handler is None:
                    raise CommandFailed(f"power action {action!r}: on, off or reboot")
                await handler(node, "operator")
            elif op == "cut":
                self.set_link(str(request.get("node")), "cut")
            elif op == "restore":
                self.set_link(str(request.get("node")), "up")
            elif op == "partition":
                groups = request.get("groups")
                if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
                    raise CommandFailed("partition needs a list of groups of node names")
                self.partition(groups)
            elif op == "heal":
                self.heal()
            elif op == "shutdown":
                await self.shutdown(float(request.get("timeout", 20.0)), reason="requested")
            else:
                raise CommandFailed(f"unknown request {op!r}")
        except CommandFailed as error:
            return {"ok": False, "error": str(error)}
        self.write_state()
        return self.status()

    async def serve_switch(self, reader, writer) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 10.0))[:MAX_LINE].decode(errors="replace").strip()
            answer = await self.switch(line, self.peer_node(writer))
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError) as error:
            log(f"switch connection: {error!r}")
        finally:
            writer.close()

    async def serve_control(self, reader, writer) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10.0)
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError as error:
                answer = {"ok": False, "error": f"bad request: {error}"}
            else:
                answer = await self.control(request)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError) as error:
            log(f"control connection: {error!r}")
        finally:
            writer.close()

    # --- life -------------------------------------------------------------------------------------------------------
    async def shutdown(self, timeout: float, reason: str) -> None:
        if self.stopping:
            await self.done.wait()
            return
        self.stopping = True
        self.event("shutdown", by=reason)
        await asyncio.gather(*(self.stop_node(node, timeout) for node in self.nodes.values()))
        for device, _backing in linux.loop_devices_under(self.lay.dir):
            subprocess.run(["losetup", "-d", device], capture_output=True, timeout=10)
        self.write_state()
        self.done.set()

    async def main(self) -> int:
        self.done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.shutdown(20.0, "signal")))
        loop.call_later(self.spec.lifetime_s, lambda: asyncio.ensure_future(self.shutdown(20.0, "lifetime over")))
        linux.unshare(linux.CLONE_NEWNET)
        self.hub = linux.namespace_id(os.getpid(), "net")
        run(["ip", "link", "set", "lo", "up"])
        self.ensure_bridge(0)
        for path in (self.lay.control, self.lay.switch):
            if os.path.exists(path):
                os.unlink(path)
        control = await asyncio.start_unix_server(self.serve_control, path=self.lay.control, limit=MAX_LINE)
        os.chmod(self.lay.control, 0o600)
        switch = await asyncio.start_unix_server(self.serve_switch, path=self.lay.switch, limit=MAX_LINE)
        os.chmod(self.lay.switch, 0o600)
        self.event("start", lifetime=self.spec.lifetime_s)
        try:
            await asyncio.gather(*(self.power_on(node, "lab") for node in self.nodes.values()))
        except CommandFailed as error:
            log(str(error))
        self.ready = True
        self.write_state()
        await self.done.wait()
        await asyncio.sleep(0.2)            # the answer to a shutdown request goes out first
        control.close()
        switch.close()
        for path in (self.lay.control, self.lay.switch):
            try:
                os.unlink(path)
            except OSError:
                pass
        self.event("exit")
        self.write_state()
        return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].startswith("--lab-dir="):
        sys.stderr.write("usage: supervisor --lab-dir=DIR\n")
        return 2
    os.umask(0o022)
    supervisor = Supervisor(argv[0][len("--lab-dir="):])
    return asyncio.run(supervisor.main())
