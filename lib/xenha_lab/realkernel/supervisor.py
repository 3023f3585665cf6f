"""The host side of a real-kernel lab: one process owning every QEMU machine of the lab.

    python3 -IS -c '…main()' --lab-dir=DIR

For each node it starts `qemu-system-x86_64` (TCG, `-cpu qemu64`, one vCPU; Xen with
Debian's kernel as PV dom0, or the kernel alone) as its child with a parent-death
signal, so that no machine outlives it. It holds

- each node's channel (a virtio-serial port, DIR/nodes/N/chan.sock on the host; the
  node's agent.py at the other end): commands and file reads for the backend, and the
  power-switch requests of the node's fence agent, answered here;
- each node's QMP socket: `quit` is a power cut (the machine ends at once, its disks
  as written), `set_link` pulls or plugs its network cable;
- the control socket (DIR/control.sock, host only): one JSON object per line each way,
  {"op": ...} -> {"ok": true, ...} | {"ok": false, "error": "..."}: status, run, read,
  power, cut, restore, partition, heal, shutdown.

The nodes' network exists only inside QEMU: two nodes are joined by a UDP socket pair on
127.0.0.1 (stateless: a relaunched node is back on the wire at once). It ends by itself
after the lab's lifetime and on SIGTERM, cutting every machine's power; it signals only
the QEMU processes it started, identified by pid, start time and command line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time

from xenha_lab.lab import linux
from xenha_lab.lab.protocol import MAX_LINE, SWITCH_ACTIONS, valid_node_name
from xenha_lab.paths import DEFAULT_PATH, child_code
from xenha_lab.realkernel import layout as Q

CLEAN_ENV = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
REBOOT_PAUSE = 1.0
QUIT_TIMEOUT = 10.0
CHANNEL_CONNECT_TIMEOUT = 15.0
EVENTS_KEPT = 500
CHANNEL_LIMIT = 64 << 20


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
    sys.stderr.write(f"{stamp} supervisor: {message}\n")
    sys.stderr.flush()


def supervisor_marker(directory: str) -> str:
    return f" --real-lab-dir={directory} "


def supervisor_argv(directory: str) -> list[str]:
    code = child_code("from xenha_lab.realkernel.supervisor import main; sys.exit(main())")
    return [sys.executable, "-IS", "-c", code, f"--real-lab-dir={directory}"]


class CommandFailed(Exception):
    pass


class NodeGone(Exception):
    """The node lost power while a request was in flight."""


class Machine:
    """One node: its QEMU process, channel and bookkeeping."""

    def __init__(self, spec: Q.MachineSpec):
        self.spec = spec
        self.name = spec.name
        self.proc: subprocess.Popen | None = None
        self.ident: linux.ProcessId | None = None
        self.power = "off"
        self.phase = "off"
        self.boots = 0
        self.boot_id = ""
        self.link = "up"
        self.segment = 0
        self.lock = asyncio.Lock()
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.connected = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.expect_exit = False
        self.launched = 0.0


class Supervisor:
    def __init__(self, directory: str):
        self.lay = Q.Layout(directory)
        self.spec = self.lay.read_spec()
        self.machines = {m.name: Machine(m) for m in self.spec.machines}
        self.events: list[dict] = []
        self.started = time.time()
        self.expires = self.started + self.spec.lab.lifetime_s
        self.done: asyncio.Event | None = None
        self.stopping = False
        self.ready = False
        self.me = linux.identify(os.getpid(), supervisor_marker(self.lay.dir))

    # --- bookkeeping --------------------------------------------------------------------------------------------
    def event(self, what: str, node: str | None = None, by: str = "lab", **extra) -> None:
        entry = {"time": round(time.time(), 3), "what": what, "node": node, "by": by, **extra}
        self.events.append(entry)
        del self.events[:-EVENTS_KEPT]
        log(f"{what} {node or ''} (by {by})" + (f" {extra}" if extra else ""))

    def status(self) -> dict:
        nodes = []
        for m in self.machines.values():
            nodes.append({"name": m.name, "address": m.spec.address,
                          "addresses": [m.spec.address, *m.spec.extra_addresses],
                          "power": m.power, "phase": m.phase,
                          # the phase can arrive before the channel's hello: booted needs both
                          "booted": m.power == "on" and m.phase == "up" and m.connected.is_set(),
                          "channel": m.connected.is_set(), "link": m.link, "segment": m.segment, "boots": m.boots,
                          "boot_id": m.boot_id, "qemu": m.ident.to_json() if m.ident else None})
        return {"ok": True, "dir": self.lay.dir, "pid": os.getpid(), "ready": self.ready, "started": self.started,
                "expires": self.expires, "stopping": self.stopping, "nodes": nodes, "events": self.events}

    def write_state(self) -> None:
        state = self.status()
        state["supervisor"] = self.me.to_json() if self.me else None
        try:
            Q.write_atomic(self.lay.state_file, json.dumps(state, indent=1) + "\n")
        except OSError as error:
            log(f"cannot write {self.lay.state_file}: {error}")

    def machine(self, name: str) -> Machine:
        if name not in self.machines:
            raise CommandFailed(f"no node {name!r} in this lab (nodes: {', '.join(self.machines)})")
        return self.machines[name]

    # --- QEMU ---------------------------------------------------------------------------------------------------
    async def power_on(self, m: Machine, by: str) -> None:
        async with m.lock:
            if m.power == "on":
                return
            if self.stopping:
                raise CommandFailed("the lab is shutting down")
            argv = Q.qemu_argv(self.spec, m.spec, self.lay)
            for path in (self.lay.qmp(m.name), self.lay.channel(m.name)):
                if os.path.exists(path):
                    os.unlink(path)
            console = open(self.lay.qemu_log(m.name), "ab")
            try:
                # the parent-death signal follows this (the only) thread: no machine outlives us
                m.proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", *argv], stdin=subprocess.DEVNULL,
                                          stdout=console, stderr=subprocess.STDOUT, env=CLEAN_ENV,
                                          start_new_session=True)
            finally:
                console.close()
            m.expect_exit = False
            m.launched = time.monotonic()
            deadline = time.monotonic() + 10.0
            while m.ident is None and time.monotonic() < deadline and m.proc.poll() is None:
                m.ident = linux.identify(m.proc.pid, Q.qemu_marker(self.lay, m.name))
                if m.ident is None:
                    await asyncio.sleep(0.02)
            if m.ident is None:
                code = m.proc.poll()
                await self._reap(m)
                raise CommandFailed(f"QEMU for {m.name} did not start (exit {code}; see "
                                    f"{self.lay.qemu_log(m.name)})")
            m.power, m.phase, m.boot_id = "on", "booting", ""
            m.boots += 1
            m.connected.clear()
            m.tasks = [asyncio.ensure_future(self._watch(m)), asyncio.ensure_future(self._channel(m))]
            if m.link != "up" or self._isolated(m):
                await self._apply_link(m)
            self.event("on", m.name, by=by, pid=m.proc.pid)
            self.write_state()

    async def _watch(self, m: Machine) -> None:
        """The machine ending by itself (dom0 powered off, crashed with -no-reboot)."""
        proc = m.proc
        while proc.poll() is None:
            await asyncio.sleep(0.2)
        if m.proc is proc and not m.expect_exit and m.power == "on":
            async with m.lock:
                if m.proc is proc and m.power == "on":
                    self.event("off", m.name, by="machine", exit=proc.returncode)
                    self._lost(m, "the machine stopped by itself")
                    self.write_state()

    def _lost(self, m: Machine, why: str) -> None:
        m.power, m.phase = "off", "off"
        m.connected.clear()
        for future in m.pending.values():
            if not future.done():
                future.set_exception(NodeGone(why))
        m.pending.clear()
        if m.writer is not None:
            m.writer.close()
            m.writer = None
        current = asyncio.current_task()
        for task in m.tasks:
            if task is not current:
                task.cancel()
        m.tasks = []
        m.proc, m.ident = None, None

    async def _reap(self, m: Machine) -> None:
        if m.proc is None:
            return
        deadline = time.monotonic() + 5.0
        while m.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def qmp(self, m: Machine, command: dict, timeout: float = 5.0) -> dict:
        """One QMP command on a short connection (greeting, capabilities, the command)."""
        async def talk():
            reader, writer = await asyncio.open_unix_connection(self.lay.qmp(m.name), limit=MAX_LINE)
            try:
                await reader.readline()
                writer.write(b'{"execute":"qmp_capabilities"}\n')
                await writer.drain()
                while "return" not in json.loads(await reader.readline() or b"{}"):
                    pass
                writer.write(json.dumps(command).encode() + b"\n")
                await writer.drain()
                while True:
                    line = await reader.readline()
                    if not line:
                        return {}
                    answer = json.loads(line)
                    if "return" in answer or "error" in answer:
                        return answer
            finally:
                writer.close()
        return await asyncio.wait_for(talk(), timeout)

    async def power_off(self, m: Machine, by: str) -> None:
        async with m.lock:
            if m.power == "off":
                self.event("off", m.name, by=by, already=True)
                return
            m.expect_exit = True
            proc, ident = m.proc, m.ident
            try:
                await self.qmp(m, {"execute": "quit"}, timeout=5.0)
            except (OSError, asyncio.TimeoutError, ValueError) as error:
                log(f"{m.name}: QMP quit failed ({error!r}): SIGKILL")
            deadline = time.monotonic() + QUIT_TIMEOUT
            while proc is not None and proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc is not None and proc.poll() is None and ident is not None:
                linux.signal_checked(ident, signal.SIGKILL)
                deadline = time.monotonic() + 5.0
                while proc.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            self._lost(m, "the node lost power")
            self.event("off", m.name, by=by)
            self.write_state()

    async def reboot(self, m: Machine, by: str) -> None:
        await self.power_off(m, by)
        await asyncio.sleep(REBOOT_PAUSE)
        await self.power_on(m, by)

    # --- the channel ----------------------------------------------------------------------------------------------
    async def _channel(self, m: Machine) -> None:
        deadline = time.monotonic() + CHANNEL_CONNECT_TIMEOUT
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.lay.channel(m.name), limit=CHANNEL_LIMIT)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    log(f"{m.name}: no channel socket after {CHANNEL_CONNECT_TIMEOUT:.0f} s")
                    return
                await asyncio.sleep(0.1)
        m.writer = writer
        writer.write(b'{"op":"hello"}\n')
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    self._from_node(m, message)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as error:
            log(f"{m.name}: channel: {error!r}")

    def _from_node(self, m: Machine, message: dict) -> None:
        if "hello" in message:
            hello = message["hello"] if isinstance(message["hello"], dict) else {}
            first = not m.connected.is_set()
            m.boot_id = str(hello.get("boot", ""))
            m.phase = str(hello.get("phase") or m.phase)
            m.connected.set()
            if first:
                self.event("agent", m.name, phase=m.phase,
                           after=round(time.monotonic() - m.launched, 1))
                self.write_state()
        elif "phase" in message:
            m.phase = str(message["phase"])
            self.event("phase", m.name, phase=m.phase, after=round(time.monotonic() - m.launched, 1))
            self.write_state()
        elif "switch" in message:
            request = message["switch"] if isinstance(message["switch"], dict) else {}
            asyncio.ensure_future(self._switch_for(m, request))
        elif "id" in message:
            future = m.pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def _switch_for(self, m: Machine, request: dict) -> None:
        answer = await self.switch(str(request.get("line", ""))[:200], asker=m.name)
        if m.writer is not None:
            m.writer.write(json.dumps({"op": "switch-answer", "id": request.get("id"), "answer": answer}).encode()
                           + b"\n")

    async def ask(self, m: Machine, request: dict, timeout: float) -> dict:
        if m.power != "on":
            raise CommandFailed(f"{m.name} is powered off")
        if not m.connected.is_set() or m.writer is None:
            raise CommandFailed(f"{m.name} is not reachable yet (phase {m.phase})")
        m.next_id += 1
        ident = m.next_id
        future = asyncio.get_running_loop().create_future()
        m.pending[ident] = future
        m.writer.write(json.dumps({**request, "id": ident}).encode() + b"\n")
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise CommandFailed(f"{m.name} did not answer in {timeout:.0f} s") from None
        finally:
            m.pending.pop(ident, None)

    # --- the power switch -------------------------------------------------------------------------------------------
    async def switch(self, line: str, asker: str) -> str:
        words = line.split()
        if not words or words[0] not in SWITCH_ACTIONS:
            return f"ERROR unknown request {line[:80]!r} (actions: {', '.join(SWITCH_ACTIONS)})"
        action, args = words[0], words[1:]
        if action == "list":
            return "OK " + " ".join(self.machines)
        if action == "monitor":
            return "OK ready"
        if len(args) != 1 or not valid_node_name(args[0]):
            return f"ERROR {action} needs one node name"
        if args[0] not in self.machines:
            return f"ERROR no node {args[0]!r} in this lab (nodes: {', '.join(self.machines)})"
        m = self.machines[args[0]]
        by = f"fence-agent@{asker}"
        try:
            if action == "status":
                return f"OK {m.power}"
            if action == "off":
                await self.power_off(m, by)
            elif action == "on":
                await self.power_on(m, by)
            else:
                await self.reboot(m, by)
        except CommandFailed as error:
            return f"ERROR {error}"
        return f"OK {m.power}"

    # --- the network ------------------------------------------------------------------------------------------------
    def _isolated(self, m: Machine) -> bool:
        """A node whose link is up but that shares its segment with no other node."""
        return all(o.segment != m.segment for o in self.machines.values() if o is not m)

    async def _apply_link(self, m: Machine) -> None:
        """The cable of a two-node lab: down when cut or when the peer is on another
        segment (a direct cable cannot be split otherwise)."""
        up = m.link == "up" and not self._isolated(m)
        try:
            answer = await self.qmp(m, {"execute": "set_link", "arguments": {"name": "nic0", "up": up}})
        except (OSError, asyncio.TimeoutError, ValueError) as error:
            raise CommandFailed(f"{m.name}: QMP set_link failed: {error!r}") from None
        if "error" in answer:
            raise CommandFailed(f"{m.name}: set_link: {answer['error'].get('desc')}")

    async def apply_links(self) -> None:
        for m in self.machines.values():
            if m.power == "on":
                await self._apply_link(m)

    async def partition(self, groups) -> None:
        seen = set()
        for group in groups:
            for name in group:
                self.machine(name)
                if name in seen:
                    raise CommandFailed(f"node {name} named in two groups")
                seen.add(name)
        for m in self.machines.values():
            m.segment = 0
        for index, group in enumerate(groups, start=1):
            for name in group:
                self.machines[name].segment = index
        await self.apply_links()
        self.event("partition", by="operator", groups=[list(g) for g in groups])

    async def set_link(self, name: str, state: str) -> None:
        self.machine(name).link = state
        await self.apply_links()
        self.event("cut" if state == "cut" else "restore", name, by="operator")

    async def heal(self) -> None:
        for m in self.machines.values():
            m.segment, m.link = 0, "up"
        await self.apply_links()
        self.event("heal", by="operator")

    # --- requests ---------------------------------------------------------------------------------------------------
    async def control(self, request: dict) -> dict:
        op = request.get("op")
        try:
            if op == "status":
                return self.status()
            if op == "run":
                return await self._run(request)
            if op == "read":
                m = self.machine(str(request.get("node")))
                if m.power != "on" or not m.connected.is_set():
                    return {"ok": True, "data": None}
                try:
                    answer = await self.ask(m, {"op": "read", "path": str(request.get("path"))}, timeout=30.0)
                except NodeGone:
                    return {"ok": True, "data": None}
                if "error" in answer:
                    raise CommandFailed(answer["error"])
                return {"ok": True, "data": answer.get("data")}
            if op == "power":
                m, action = self.machine(str(request.get("node"))), request.get("action")
                handler = {"on": self.power_on, "off": self.power_off, "reboot": self.reboot}.get(action)
                if handler is None:
                    raise CommandFailed(f"power action {action!r}: on, off or reboot")
                await handler(m, "operator")
            elif op == "cut":
                await self.set_link(str(request.get("node")), "cut")
            elif op == "restore":
                await self.set_link(str(request.get("node")), "up")
            elif op == "partition":
                groups = request.get("groups")
                if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
                    raise CommandFailed("partition needs a list of groups of node names")
                await self.partition(groups)
            elif op == "heal":
                await self.heal()
            elif op == "shutdown":
                await self.shutdown(reason="requested")
            else:
                raise CommandFailed(f"unknown request {op!r}")
        except CommandFailed as error:
            return {"ok": False, "error": str(error)}
        self.write_state()
        return self.status()

    async def _run(self, request: dict) -> dict:
        m = self.machine(str(request.get("node")))
        argv = request.get("argv")
        if not isinstance(argv, list) or not argv:
            raise CommandFailed("run needs a command")
        timeout = float(request.get("timeout", 60.0))
        started = time.monotonic()
        try:
            answer = await self.ask(m, {"op": "run", "argv": [str(a) for a in argv], "timeout": timeout,
                                        "input": request.get("input")}, timeout=timeout + 20.0)
        except NodeGone as gone:
            return {"ok": True, "rc": -9, "out": "", "err": f"{m.name}: {gone}\n",
                    "seconds": time.monotonic() - started, "timed_out": False}
        if "error" in answer:
            raise CommandFailed(f"{m.name}: {answer['error']}")
        return {"ok": True, **{k: answer.get(k) for k in ("rc", "out", "err", "seconds", "timed_out")}}

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
    async def shutdown(self, reason: str) -> None:
        if self.stopping:
            await self.done.wait()
            return
        self.stopping = True
        self.event("shutdown", by=reason)
        await asyncio.gather(*(self.power_off(m, "shutdown") for m in self.machines.values()))
        self.write_state()
        self.done.set()

    async def main(self) -> int:
        self.done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.shutdown("signal")))
        loop.call_later(self.spec.lab.lifetime_s, lambda: asyncio.ensure_future(self.shutdown("lifetime over")))
        if os.path.exists(self.lay.control):
            os.unlink(self.lay.control)
        control = await asyncio.start_unix_server(self.serve_control, path=self.lay.control, limit=CHANNEL_LIMIT)
        os.chmod(self.lay.control, 0o600)
        self.event("start", lifetime=self.spec.lab.lifetime_s)
        for m in self.machines.values():            # one at a time: each boot saturates a core for seconds
            try:
                await self.power_on(m, "lab")
            except CommandFailed as error:
                log(str(error))
        self.ready = True
        self.write_state()
        await self.done.wait()
        await asyncio.sleep(0.2)            # the answer to a shutdown request goes out first
        control.close()
        try:
            os.unlink(self.lay.control)
        except OSError:
            pass
        self.event("exit")
        self.write_state()
        return 0


def decode_read(answer: dict) -> bytes | None:
    data = answer.get("data")
    return None if data is None else base64.b64decode(data)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].startswith("--real-lab-dir="):
        sys.stderr.write("usage: supervisor --real-lab-dir=DIR\n")
        return 2
    os.umask(0o022)
    supervisor = Supervisor(argv[0][len("--real-lab-dir="):])
    return asyncio.run(supervisor.main())
