"""Simulated DRBD nodes for tests and the lab (the counterpart of xenha_lab.sim.xen.hosts).

    world = DrbdWorld(tmp_path / "drbd", {"alice": "10.99.0.1", "bob": "10.99.0.2"})
    try:
        conf = world.write_config("r0", minor=1, port=7789)   # one backing loop device per node
        for n in world.names: world.create_md(n, "r0"); world.drbdadm(n, "up", "r0", check=True)
        world.drbdadm("alice", "primary", "--force", "r0", check=True)   # initial full sync starts
        world.wait_sync("r0")
        assert world.write("alice", "r0", 7, b"x" * 4096) == "ack"       # protocol C: on both disks
        world.cut("alice", "bob")          # network failure seen by both sides
        ...                                # Primary alice: fence-peer runs, I/O frozen until it returns
        world.heal("alice", "bob"); world.wait_sync("r0")
        assert world.disk_blocks("bob", "r0")[7] == b"x" * 4096
    finally:
        world.cleanup()

Each node gets: a network namespace with its address on `lo` (real `drbdadm up` checks
that the node's address exists: "IP ... not found on this host", rc 10), a volatile
state dir (XENHA_SIM_DRBD_STATE), a persistent disks dir (XENHA_SIM_DRBD_DISKS), and the
shared network dir (XENHA_SIM_DRBD_NET) common to all. With `wired=True` the address is
on the node's `eth0` instead, a veth pair to a bridge in a hub namespace of the world's
own, so that real TCP flows between the nodes: `start_kernel(node)` then runs the
node's kernel process (`kernel`: time passes on its own, connections follow the TCP
links), and `link_down(node)`/`link_up(node)` cut and restore the node's wire as the
lab does (its veth end in the hub set down). Real drbdadm runs as a node with
`__DRBD_NODE__=<name>`, inside its namespace, with the simulated drbdsetup first on PATH
(XENHA_SIMBINDIR, as `make test` stages it). Backing devices are loop devices over
sparse files (real drbdmeta needs block devices). The kernel's usermode helper of each
node is a small script running `drbdadm -c <config> <cmd> <res>` as that node, so the
fence-peer/unfence-peer handlers configured in the resource run as on a real node.

`crash(node)` is a power cut: volatile state gone, helper processes and the kernel
process killed (a wired node's wire goes down first: a dead node sends nothing), the
node's advertisements withdrawn from the network (`node_power_off`, which the lab's
power switch calls), persistent disk data and meta-data kept. `cleanup()` always
removes namespaces, loop devices, processes and files, also after failures.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from xenha_lab.paths import DEFAULT_PATH, default_simbindir
from xenha_lab.sim.drbd import blockio, config, link
from xenha_lab.sim.drbd.advance import advance
from xenha_lab.sim.drbd.metadata import BLOCK
from xenha_lab.sim.drbd.network import withdraw_node
from xenha_lab.sim.drbd.node import Node


class DrbdWorld:
    """N simulated DRBD nodes (name -> IPv4 address) under `root`."""

    def __init__(self, root, nodes: dict, simbindir: str | None = None, netns: bool = True,
                 resync_rate_kib: int | None = None, wired: bool = False):
        self.root = os.path.abspath(str(root))
        self.nodes = dict(nodes)
        self.holders = {}   # node -> holders registry of an LVM world (use_holders)
        self.names = list(self.nodes)
        self.simbindir = simbindir or default_simbindir()
        self.net = os.path.join(self.root, "net")
        self.tag = os.urandom(3).hex()
        self.netns = {}
        self.loops = {}            # node -> list of (loop device, file)
        self.configs = {}          # resource -> config path
        self.rate = resync_rate_kib
        self.wired = wired and netns
        self.hub = None            # the namespace of the bridge that wires the nodes
        self.kernels = {}          # node -> Popen of its kernel process
        os.makedirs(self.net, exist_ok=True)
        try:
            if self.wired:
                self._make_hub()
            for name in self.names:
                os.makedirs(self.state_dir(name), exist_ok=True)
                os.makedirs(self.disks_dir(name), exist_ok=True)
                if netns:
                    self._make_netns(name)
        except BaseException:
            self.cleanup()
            raise

    # --- layout --------------------------------------------------------------------
    def node_dir(self, name: str) -> str:
        return os.path.join(self.root, "nodes", name)

    def state_dir(self, name: str) -> str:
        return os.path.join(self.node_dir(name), "state")

    def disks_dir(self, name: str) -> str:
        return os.path.join(self.node_dir(name), "disks")

    def kernel(self, name: str) -> Node:
        return Node(self.state_dir(name), self.disks_dir(name), self.net, name, environ=self.env(name))

    def env(self, name: str, extra=None) -> dict:
        env = {"PATH": f"{self.simbindir}:{DEFAULT_PATH}", "LANG": "C.UTF-8", "__DRBD_NODE__": name,
               "XENHA_SIM_DRBD_STATE": self.state_dir(name), "XENHA_SIM_DRBD_DISKS": self.disks_dir(name),
               "XENHA_SIM_DRBD_NET": self.net, "XENHA_SIM_DRBD_NODE": name,
               # block-device holders (what DRBD holds open), shared with a simulated LVM
               "XENHA_SIM_HOLDERS": self.holders.get(name) or os.path.join(self.node_dir(name), "holders")}
        if self.rate:
            env["XENHA_SIM_DRBD_RESYNC_RATE"] = str(self.rate)
        env.update(extra or {})
        return env

    def _make_netns(self, name: str) -> None:
        ns = f"xdrbd-{self.tag}-{name}"[:40]
        subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
        self.netns[name] = ns
        if self.wired:
            hub_end = self._hub_end(name)
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hub_end, "netns", self.hub)
            _ip("-n", self.hub, "link", "set", hub_end, "master", "br0")
            _ip("-n", self.hub, "link", "set", hub_end, "up")
            _ip("-n", ns, "addr", "add", f"{self.nodes[name]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        else:
            _ip("-n", ns, "addr", "add", f"{self.nodes[name]}/24", "dev", "lo")
        _ip("-n", ns, "link", "set", "lo", "up")

    def _make_hub(self) -> None:
        self.hub = f"xdrbd-{self.tag}-hub"
        subprocess.run(["ip", "netns", "add", self.hub], check=True, capture_output=True)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")

    def _hub_end(self, name: str) -> str:
        return f"n{self.names.index(name)}"

    # --- the wire and the kernel processes (wired worlds) ----------------------------------
    def link_down(self, name: str) -> None:
        """The node's wire is cut (its veth end in the hub down): packets stop both ways."""
        _ip("-n", self.hub, "link", "set", self._hub_end(name), "down")

    def link_up(self, name: str) -> None:
        _ip("-n", self.hub, "link", "set", self._hub_end(name), "up")

    def start_kernel(self, name: str, tick: float | None = None) -> subprocess.Popen:
        """Run the node's kernel process (`xenha-sim-drbd-kernel`) in its namespace, as
        the lab starts it at boot; its messages go to `kernel_log(name)`."""
        self.stop_kernel(name)
        argv = ["xenha-sim-drbd-kernel"] + (["--tick", str(tick)] if tick else [])
        if name in self.netns:
            argv = ["ip", "netns", "exec", self.netns[name], *argv]
        with open(self.kernel_log_path(name), "a", encoding="utf-8") as log:
            proc = subprocess.Popen(argv, env=self.env(name), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        self.kernels[name] = proc
        if not self.wait_for(lambda: self.kernel_running(name) or proc.poll() is not None, 10.0):
            raise AssertionError(f"the kernel process of {name} did not register")
        if proc.poll() is not None:
            raise AssertionError(f"the kernel process of {name} exited: {self.kernel_log(name)}")
        return proc

    def kernel_running(self, name: str) -> bool:
        links = link.kernel_links(self.state_dir(name))
        proc = self.kernels.get(name)
        return links is not None and proc is not None and proc.poll() is None

    def stop_kernel(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.kernels.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)

    def kernel_links(self, name: str) -> dict | None:
        """{"<local> <peer>": up} of the node's kernel process (None without one)."""
        return link.kernel_links(self.state_dir(name))

    def kernel_log_path(self, name: str) -> str:
        return os.path.join(self.node_dir(name), "kernel.log")

    def kernel_log(self, name: str) -> str:
        try:
            with open(self.kernel_log_path(name), encoding="utf-8") as handle:
                return handle.read()
        except OSError:
            return ""

    # --- disks and configuration ----------------------------------------------------------
    def make_disk(self, name: str, size_mib: int = 64) -> str:
        """A loop device over a sparse file, private to this world."""
        path = os.path.join(self.node_dir(name), f"disk{len(self.loops.get(name, []))}.img")
        with open(path, "wb") as handle:
            handle.truncate(size_mib * 1024 * 1024)
        loop = subprocess.run(["losetup", "--find", "--show", path], check=True, capture_output=True,
                              text=True).stdout.strip()
        self.loops.setdefault(name, []).append((loop, path))
        return loop

    def write_config(self, res: str, minor: int = 1, port: int = 7789, net: str | None = None,
                     handlers: str | None = None, disks: dict | None = None, extra: str = "",
                     size_mib: int = 64, drbd84: bool = False) -> str:
        """A DRBD 9 resource file for all nodes (node-ids in order); default: protocol C,
        allow-two-primaries, fencing resource-and-stonith, as xenha renders it. `drbd84`:
        the 8.4 syntax (no node-id; fencing is a disk option there)."""
        disks = disks or {n: self.make_disk(n, size_mib) for n in self.names}
        fencing = "fencing resource-and-stonith;"
        net = net if net is not None else "protocol C; allow-two-primaries yes;" + ("" if drbd84 else f" {fencing}")
        if drbd84:
            extra = f"    disk {{ {fencing} }}\n" + extra
        hosts = "".join(
            f"    on {n} {{\n" + ("" if drbd84 else f"        node-id {i};\n")
            + f"        device /dev/drbd{minor} minor {minor};\n"
            f"        disk {disks[n]};\n        meta-disk internal;\n"
            f"        address ipv4 {self.nodes[n]}:{port};\n    }}\n"
            for i, n in enumerate(self.names))
        text = (f"global {{ usage-count no; }}\nresource {res} {{\n{hosts}    net {{ {net} }}\n"
                + (f"    handlers {{ {handlers} }}\n" if handlers else "") + extra + "}\n")
        path = os.path.join(self.root, f"{res}.res")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        self.configs[res] = path
        for name in self.names:
            self.set_usermode_helper(name, path)
        return path

    def use_holders(self, name: str, holders_dir: str) -> None:
        """Share the node's block-device holders with a simulated LVM node (LVs under
        DRBD are then open)."""
        self.holders[name] = holders_dir

    def set_usermode_helper(self, name: str, config: str, extra_env=None) -> str:
        """The node's kernel helper: real drbdadm with this config, as this node.
        `extra_env` is exported to the helper and the handlers it runs (e.g. the node's
        LVM_SYSTEM_DIR, so that a resync-snapshot handler uses the node's lvm2 setup)."""
        return install_usermode_helper(self.state_dir(name), os.path.join(self.node_dir(name), "usermode-helper"),
                                       self.simbindir, config=config, node=name, extra_env=extra_env)

    def backing(self, name: str, res: str, vnr: int = 0) -> str:
        out = self.drbdadm(name, "sh-ll-dev", res).stdout.split()
        return out[vnr]

    # --- running tools as a node ------------------------------------------------------
    def run(self, name: str, argv, timeout: float = 60.0, env=None) -> subprocess.CompletedProcess:
        cmd = list(argv)
        if name in self.netns:
            cmd = ["ip", "netns", "exec", self.netns[name], *cmd]
        return subprocess.run(cmd, env=self.env(name, env), capture_output=True, text=True, timeout=timeout)

    def drbdadm(self, name: str, *args, config: str | None = None, check: bool = False, timeout: float = 60.0,
                env=None) -> subprocess.CompletedProcess:
        conf = config or next(iter(self.configs.values()))
        proc = self.run(name, ["drbdadm", "-c", conf, *args], timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"drbdadm {' '.join(args)} on {name}: rc {proc.returncode}\n{proc.stderr}")
        return proc

    def drbdsetup(self, name: str, *args, timeout: float = 60.0, env=None) -> subprocess.CompletedProcess:
        return self.run(name, ["drbdsetup", *args], timeout=timeout, env=env)

    def create_md(self, name: str, res: str) -> subprocess.CompletedProcess:
        return self.drbdadm(name, "create-md", "--force", res, check=True)

    def up_all(self, res: str) -> None:
        for name in self.names:
            self.create_md(name, res)
            self.drbdadm(name, "up", res, check=True)

    # --- inspecting ------------------------------------------------------------------------
    def events(self, name: str, res: str = "all") -> dict:
        """`drbdsetup events2 --now` parsed: {(object, key...): {field: value}}."""
        proc = self.drbdsetup(name, "events2", "--now", res)
        objects = {}
        for line in proc.stdout.splitlines():
            words = line.split()
            if len(words) < 3 or words[0] != "exists":
                continue
            fields = dict(w.split(":", 1) for w in words[2:] if ":" in w)
            objects.setdefault(words[1], []).append(fields)
        return objects

    def role(self, name: str, res: str) -> str:
        return self.drbdsetup(name, "role", res).stdout.strip()

    def disk_state(self, name: str, res: str) -> str:
        ev = self.events(name, res)
        return ev["device"][0]["disk"] if ev.get("device") else ""

    def repl(self, name: str, res: str) -> list[str]:
        return [pd["replication"] for pd in self.events(name, res).get("peer-device", [])]

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.05):
        end = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() >= end:
                return value
            time.sleep(interval)

    def wait_sync(self, res: str, timeout: float = 30.0) -> bool:
        """Until every node's peer devices are Established (resyncs done) with UpToDate data."""
        def synced():
            views = {name: self.events(name, res) for name in self.names}   # every node looks
            for name in self.names:
                ev = views[name]
                pds = ev.get("peer-device", [])
                if not pds or any(p["replication"] != "Established" or p["peer-disk"] != "UpToDate" for p in pds):
                    return False
                if any(d["disk"] != "UpToDate" for d in ev.get("device", [])):
                    return False
            return True
        return self.wait_for(synced, timeout)

    def helper_log(self, name: str) -> list[str]:
        try:
            with open(os.path.join(self.state_dir(name), "helpers"), encoding="utf-8") as handle:
                return handle.read().splitlines()
        except OSError:
            return []

    # --- device users ------------------------------------------------------------------------
    def write(self, name: str, res: str, block: int, data: bytes, vnr: int = 0, wait: float = 0.0) -> str:
        """Write one 4 KiB block through /dev/drbdN on `name`. 'ack' = acknowledged (on
        every disk protocol C requires); 'frozen' = I/O suspended and `wait` ran out
        (nothing written). Raises blockio.BlockIOError when the device refuses the write."""
        data = bytes(data).ljust(BLOCK, b"\0")[:BLOCK]
        end = time.monotonic() + wait
        while True:
            node = self.kernel(name)
            with node:
                result = blockio.write_block(node, res, vnr, block, data)
            if result == "ack" or time.monotonic() >= end:
                return result
            for other in self.names:     # let the peers make progress meanwhile
                if other != name:
                    self.touch(other, res)
            time.sleep(0.05)

    def read(self, name: str, res: str, block: int, vnr: int = 0):
        node = self.kernel(name)
        with node:
            return blockio.read_block(node, res, vnr, block)

    def open_device(self, name: str, res: str, count: int = 1) -> None:
        """Hold /dev/drbdN open (like a running domain): demote then fails with -12."""
        node = self.kernel(name)
        with node:
            record = node.get(res)
            record.openers = max(0, record.openers + count)
            node.save(record)

    def disk_blocks(self, name: str, res_or_backing: str) -> dict:
        """What the node's backing disk holds (block -> bytes), whatever the DRBD state."""
        backing = res_or_backing
        if not backing.startswith("/"):
            backing = self.loops[name][0][0] if name in self.loops else self.backing(name, res_or_backing)
        node = self.kernel(name)
        with node:
            return blockio.disk_blocks(node, backing)

    def touch(self, name: str, res: str) -> None:
        """Let the node's kernel look at the world (what any drbdsetup call does)."""
        node = self.kernel(name)
        with node:
            record = node.load(res)
            if record is not None:
                advance(node, record)

    # --- faults ---------------------------------------------------------------------------------
    def _cut_path(self, a: str, b: str | None = None) -> str:
        ips = sorted(self.nodes[n] for n in ((a, b) if b else (a,)))
        return os.path.join(self.net, "cut", "-".join(ips))

    def cut(self, a: str, b: str | None = None) -> None:
        """Network failure between a and b (or of a alone), seen by both sides."""
        path = self._cut_path(a, b)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()

    def heal(self, a: str, b: str | None = None) -> None:
        try:
            os.unlink(self._cut_path(a, b))
        except FileNotFoundError:
            pass

    def crash(self, name: str) -> None:
        """Power cut: RAM (volatile state), helper and kernel processes gone, disks kept.
        A wired node's wire stays down (`link_up` to bring it back)."""
        if self.wired:
            self.link_down(name)
        self.stop_kernel(name, signal.SIGKILL)
        self._kill_helpers(name)
        node_power_off(self.net, node=name)
        shutil.rmtree(self.state_dir(name), ignore_errors=True)
        os.makedirs(self.state_dir(name), exist_ok=True)
        for path in self.configs.values():
            self.set_usermode_helper(name, path)

    def _kill_helpers(self, name: str) -> None:
        directory = os.path.join(self.state_dir(name), "helpers.d")
        try:
            pids = [int(p) for p in os.listdir(directory) if p.isdigit()]
        except OSError:
            return
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def cleanup(self) -> None:
        """Always safe to call: processes, resources, loops, namespaces, files."""
        for name in list(self.kernels):
            self.stop_kernel(name, signal.SIGKILL)
        for name in self.names:
            self._kill_helpers(name)
            try:
                node = self.kernel(name)
                with node:
                    for res in node.names():
                        try:
                            config.down(node, res)
                        except Exception:  # noqa: BLE001 - best effort teardown
                            pass
            except OSError:
                pass
        for name, loops in self.loops.items():
            for loop, _path in loops:
                subprocess.run(["losetup", "-d", loop], capture_output=True)
        self.loops = {}
        for ns in [*self.netns.values(), *([self.hub] if self.hub else [])]:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self.netns, self.hub = {}, None
        shutil.rmtree(self.root, ignore_errors=True)


def install_usermode_helper(state_dir: str, script: str, simbindir: str | None = None, config: str | None = None,
                            node: str | None = None, drbdadm: str = "/usr/sbin/drbdadm", extra_env=None) -> str:
    """Write a usermode helper wrapper and make it the simulated module's
    `usermode_helper` (what /sys/module/drbd/parameters/usermode_helper is on a real
    node; default /sbin/drbdadm). The kernel runs helpers with
    PATH=/sbin:/usr/sbin:/bin:/usr/bin, where the *real* drbdsetup lives; handlers such
    as crm-fence-peer.9.sh call `drbdsetup events2 --now`, so the wrapper puts the
    simulated tools first on PATH. `config`/`node` add `-c` and `__DRBD_NODE__` for
    setups without /etc/drbd.conf or a matching hostname (the tests); the lab can leave
    them out."""
    lines = ["#!/bin/sh"]
    if simbindir:
        lines.append(f'PATH={simbindir}:$PATH; export PATH')
    if node:
        lines.append(f"__DRBD_NODE__={node}; export __DRBD_NODE__")
    for key, value in (extra_env or {}).items():
        lines.append(f"{key}='{value}'; export {key}")
    lines.append(f'exec {drbdadm}{" -c " + config if config else ""} "$@"')
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(script, 0o755)
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "usermode_helper"), "w", encoding="utf-8") as handle:
        handle.write(script + "\n")
    return script


def node_power_off(net_dir: str, node: str | None = None, ips=None) -> None:
    """For the lab's power switch: take a dead node off the simulated DRBD network (its
    advertisements, by node name — the DRBD node token, its hostname in the lab — or by
    its addresses). Its RAM state (the kernel's records, in the node's /run) goes with
    the node; what it wrote to its disks and what peers queued for them stays. Peers
    running a kernel process stay connected, without news, until DRBD's timers end the
    TCP link; peers without one see the node gone at their next look. Idempotent."""
    withdraw_node(net_dir, token=node, ips=set(ips or ()))


def _ip(*args) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)
