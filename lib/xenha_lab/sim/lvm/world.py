"""A simulated LVM world for tests and the lab: nodes with isolated lvm2 configuration
and volatile state, loop-backed PVs (host-local or shared), and helpers to drive them.

    world = LvmWorld(tmp_path / "lvm")              # everything lives under this directory
    vg = world.name("vg0")                           # unique per world: no host collision
    world.add_node("mk1")                            # system ID "mk1"
    world.create_vg("mk1", vg, world.add_pv("mk1-disk", "1G", ["mk1"]))
    world.create_lv("mk1", vg, "vm_shaolin", "512M")
    world.run("mk1", ["lvchange", "-ay", f"{vg}/vm_shaolin"])
    world.write("mk1", vg, "vm_shaolin", 0, b"hello")
    world.hold("mk1", f"/dev/{vg}/vm_shaolin", "drbd1")    # DRBD attached: LV open
    world.release("mk1", f"/dev/{vg}/vm_shaolin")
    world.cleanup()                                  # loops, /dev entries, files: all gone

A node (`add_node`) has, under <root>/nodes/<name>/:
    etc/lvm.conf, etc/lvmlocal.conf   LVM_SYSTEM_DIR: a filter accepting only this world's
                                      loop devices visible to the node (tools.md §5.2),
                                      private backup/archive/cache/locking dirs (lvm never
                                      writes /etc/lvm nor sees the host's disks),
                                      activation=0, system_id from lvmlocal.conf
    run/lvm, run/holders              XENHA_SIM_LVM_STATE and XENHA_SIM_HOLDERS (the node's
                                      volatile state: tmpfs /run on a lab node)
    dev/                              only with private_dev=True: XENHA_SIM_DEV_ROOT, so two
                                      nodes can both have a VG named vg0 (the lab gives
                                      each node its own /dev instead)

PVs are sparse files under <root>/disks attached to loop devices; a PV is visible to the
nodes listed (host-local: one node, DRBD's case; shared: several, the SAN case for
system ID and tag hand-over). `fail_pv` makes a PV vanish for a node by dropping it from
the node's device filter: lvm2 then reports it exactly as a disk that disappeared
(`WARNING: Couldn't find device with uuid …`, pv_attr `a-m`, `[unknown]`, LVs partial),
while the loop device itself stays (an active LV keeps its mapping, as a dm device
would until its I/O fails). `restore_pv` brings it back.

`cleanup()` is safe to call at any time and more than once: it detaches every loop
device backed by this world's files or PV loops (active LVs and snapshots included),
removes every /dev entry it or the simulator created for this world's VGs and the
world's directory contents it created. Tests call it in a `finally`.

`node_power_off(lvm_state_dir)` is the lab's power-cut hook: the dead node's active
LVs are loop devices that outlive its namespaces; it detaches each one still bound as
the node mapped it (`devmapper.power_off`), leaving /dev entries to the node's own /dev.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import string
import subprocess

from xenha_lab.paths import DEFAULT_PATH, default_simbindir
from xenha_lab.sim import holders
from xenha_lab.sim.lvm import state as st
from xenha_lab.sim.lvm.devmapper import power_off, remove_device

LOSETUP = "losetup"


class LvmError(RuntimeError):
    def __init__(self, argv, proc: subprocess.CompletedProcess):
        super().__init__("%s failed (rc %d): %s" % (" ".join(argv), proc.returncode, proc.stderr.strip()))
        self.proc = proc


class PV:
    def __init__(self, name: str, path: str, device: str, nodes):
        self.name, self.path, self.device = name, path, device
        self.nodes = list(nodes)
        self.failed_on: set[str] = set()


class LvmNode:
    def __init__(self, world: "LvmWorld", name: str, system_id: str | None, private_dev: bool,
                 extra_config: str):
        self.world, self.name, self.system_id = world, name, system_id
        self.dir = os.path.join(world.root, "nodes", name)
        self.etc = os.path.join(self.dir, "etc")
        self.state_dir = os.path.join(self.dir, "run", "lvm")
        self.holders_dir = os.path.join(self.dir, "run", "holders")
        self.dev_root = os.path.join(self.dir, "dev") if private_dev else "/dev"
        self.extra_config = extra_config
        for path in (self.etc, self.state_dir, self.holders_dir,
                     *(os.path.join(self.dir, d) for d in ("backup", "archive", "cache", "lock"))):
            os.makedirs(path, exist_ok=True)
        if private_dev:
            os.makedirs(self.dev_root, exist_ok=True)

    @property
    def state(self) -> st.NodeState:
        return st.NodeState(self.state_dir, self.holders_dir, self.dev_root)

    def write_config(self):
        devices = [pv.device for pv in self.world.pvs.values()
                   if self.name in pv.nodes and self.name not in pv.failed_on]
        accept = ", ".join('"a|^%s$|"' % dev for dev in devices)
        filt = "[%s]" % (accept + ", " + '"r|.*|"' if accept else '"r|.*|"')
        source = "lvmlocal" if self.system_id else "none"
        text = (
            "# written by xenha_lab.sim.lvm.world for node %s\n" % self.name
            + "devices {\n\tuse_devicesfile = 0\n\tobtain_device_list_from_udev = 0\n"
            + "\texternal_device_info_source = \"none\"\n\thints = \"none\"\n"
            + "\tglobal_filter = %s\n\tfilter = %s\n\tcache_dir = \"%s\"\n}\n" % (filt, filt, os.path.join(self.dir, "cache"))
            + "backup {\n\tbackup_dir = \"%s\"\n\tarchive_dir = \"%s\"\n}\n" % (
                os.path.join(self.dir, "backup"), os.path.join(self.dir, "archive"))
            + "global {\n\tlocking_dir = \"%s\"\n\tuse_lvmpolld = 0\n\tuse_lvmlockd = 0\n" % os.path.join(self.dir, "lock")
            + "\tnotify_dbus = 0\n\tevent_activation = 0\n\tactivation = 0\n"
            + "\tsystem_id_source = \"%s\"\n}\n" % source
            + "activation {\n\tudev_sync = 0\n\tudev_rules = 0\n\tmonitoring = 0\n}\n"
            + (self.extra_config.rstrip() + "\n" if self.extra_config else "")
        )
        st.write_atomic(os.path.join(self.etc, "lvm.conf"), text)
        local = 'local {\n\tsystem_id = "%s"\n}\n' % self.system_id if self.system_id else "local {\n}\n"
        st.write_atomic(os.path.join(self.etc, "lvmlocal.conf"), local)


class LvmWorld:
    """Simulated LVM nodes and disks under `root` (see the module docstring)."""

    def __init__(self, root, simbindir: str | None = None, tag: str | None = None):
        self.root = os.path.abspath(str(root))
        os.makedirs(os.path.join(self.root, "disks"), exist_ok=True)
        self.simbindir = simbindir or default_simbindir()
        self.tag = tag or "xs" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))
        self.nodes: dict[str, LvmNode] = {}
        self.pvs: dict[str, PV] = {}
        self.vg_names: set[str] = set()

    # --- names -----------------------------------------------------------------------
    def name(self, base: str) -> str:
        """A VG name unique to this world (e.g. vg0 -> xsabcde_vg0)."""
        name = "%s_%s" % (self.tag, base)
        self.vg_names.add(name)
        return name

    # --- nodes and disks -------------------------------------------------------------
    def add_node(self, name: str, system_id: str | None = "", private_dev: bool = False,
                 extra_config: str = "") -> LvmNode:
        """A node; system_id "" means the node's name, None means no system ID."""
        node = LvmNode(self, name, name if system_id == "" else system_id, private_dev, extra_config)
        self.nodes[name] = node
        node.write_config()
        return node

    def set_config(self, node: str, extra_config: str):
        """Extra lvm.conf text for a node (e.g. 'activation { volume_list = ["@t"] }')."""
        self.nodes[node].extra_config = extra_config
        self.nodes[node].write_config()

    def add_pv(self, name: str, size: str = "256M", nodes=None, pvcreate: bool = True) -> str:
        """A sparse file on a loop device, visible to `nodes` (default: all); returns the
        device path. pvcreate runs on the first of those nodes."""
        nodes = list(nodes) if nodes is not None else list(self.nodes)
        path = os.path.join(self.root, "disks", name + ".img")
        with open(path, "wb") as handle:
            handle.truncate(parse_size(size))
        device = subprocess.run([LOSETUP, "--find", "--show", path], capture_output=True,
                                text=True, check=True).stdout.strip()
        self.pvs[name] = PV(name, path, device, nodes)
        for node in nodes:
            self.nodes[node].write_config()
        if pvcreate and nodes:
            self.check(nodes[0], ["pvcreate", device])
        return device

    def pv(self, name: str) -> PV:
        return self.pvs[name]

    def fail_pv(self, name: str, node: str | None = None):
        pv = self.pvs[name]
        for n in ([node] if node else pv.nodes):
            pv.failed_on.add(n)
            self.nodes[n].write_config()

    def restore_pv(self, name: str, node: str | None = None):
        pv = self.pvs[name]
        for n in ([node] if node else pv.nodes):
            pv.failed_on.discard(n)
            self.nodes[n].write_config()

    # --- running ---------------------------------------------------------------------
    def env(self, node: str, extra=None) -> dict:
        n = self.nodes[node]
        env = {
            "PATH": "%s:%s" % (self.simbindir, DEFAULT_PATH),
            "LANG": "C.UTF-8",
            "LVM_SYSTEM_DIR": n.etc,
            "LVM_SUPPRESS_FD_WARNINGS": "1",
            st.ENV_ROOT: n.state_dir,
            holders.ENV_DIR: n.holders_dir,
        }
        if n.dev_root != "/dev":
            env[st.ENV_DEV_ROOT] = n.dev_root
        env.update(extra or {})
        return env

    def run(self, node: str, argv, input: str | None = None, timeout: float = 60.0,
            extra_env=None) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env(node, extra_env), capture_output=True,
                              text=True, input=input if input is not None else "", timeout=timeout)

    def check(self, node: str, argv, **kwargs) -> subprocess.CompletedProcess:
        proc = self.run(node, argv, **kwargs)
        if proc.returncode != 0:
            raise LvmError(argv, proc)
        return proc

    def report(self, node: str, command: str, fields: str, *args) -> list[dict]:
        proc = self.run(node, [command, "--reportformat", "json", "-o", fields, *args])
        if not proc.stdout.strip():
            return []
        data = json.loads(proc.stdout)
        key = command[:-1] if command.endswith("s") else command
        rows = []
        for section in data.get("report", []):
            rows.extend(section.get(key, []))
        return rows

    def create_vg(self, node: str, vg: str, *devices, extra=()):
        self.vg_names.add(vg)
        return self.check(node, ["vgcreate", *extra, vg, *devices])

    def create_lv(self, node: str, vg: str, lv: str, size: str, activate: bool = False, extra=(),
                  pvs=()):
        args = ["lvcreate", "-L", size, "-n", lv, *extra, vg, *pvs]
        if not activate:
            args[1:1] = ["-an", "-Zn"]
        return self.check(node, args)

    # --- devices -----------------------------------------------------------------------
    def device(self, node: str, vg: str, lv: str) -> str:
        n = self.nodes[node]
        path = os.path.join(n.dev_root, vg, lv)
        if not os.path.exists(path):
            raise LvmError(["open", path], subprocess.CompletedProcess([], 1, "", "%s: not active" % path))
        return path

    def read(self, node: str, vg: str, lv: str, offset: int, length: int) -> bytes:
        fd = os.open(self.device(node, vg, lv), os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def write(self, node: str, vg: str, lv: str, offset: int, data: bytes):
        fd = os.open(self.device(node, vg, lv), os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def hold(self, node: str, path: str, holder: str = "drbd1"):
        """Register `holder` as holding the device at `path` open (what the DRBD
        simulator does on attach)."""
        holders.hold(self.nodes[node].holders_dir, path, holder)

    def release(self, node: str, path: str):
        holders.release(self.nodes[node].holders_dir, path)

    def crash(self, node: str):
        """A power cut: the node's mapped devices and volatile state vanish."""
        n = self.nodes[node]
        state = n.state
        for record in state.devices():
            remove_device(state, record)
        shutil.rmtree(n.holders_dir, ignore_errors=True)
        os.makedirs(n.holders_dir, exist_ok=True)

    # --- teardown --------------------------------------------------------------------
    def cleanup(self):
        for node in list(self.nodes):
            try:
                self.crash(node)
            except OSError:
                pass
        pv_devices = {pv.device for pv in self.pvs.values()}
        # loops over our PV loops (active LVs), then loops over our files (snapshots,
        # PVs): whatever the simulator or a failed test left behind
        for _ in range(2):
            for loop, backing in loop_devices():
                if backing in pv_devices or backing.startswith(self.root + os.sep):
                    if loop not in pv_devices or _ == 1:
                        detach(loop)
        for vg in self.vg_names:
            for dev_root in {"/dev", *(n.dev_root for n in self.nodes.values())}:
                vg_dir = os.path.join(dev_root, vg)
                if os.path.isdir(vg_dir) and not os.path.islink(vg_dir):
                    for entry in os.listdir(vg_dir):
                        try:
                            os.unlink(os.path.join(vg_dir, entry))
                        except OSError:
                            pass
                    try:
                        os.rmdir(vg_dir)
                    except OSError:
                        pass
                mapper = os.path.join(dev_root, "mapper")
                prefix = st.dm_mangle(vg) + "-"
                try:
                    entries = os.listdir(mapper)
                except OSError:
                    entries = []
                for entry in entries:
                    if entry.startswith(prefix):
                        try:
                            os.unlink(os.path.join(mapper, entry))
                        except OSError:
                            pass
        for name in ("disks", "nodes"):
            shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)


def node_power_off(lvm_state_dir: str, node: str | None = None) -> int:
    """For the lab's power switch: the LVs a node had active are loop devices, kernel
    objects that outlive the node's namespaces; detach them (each checked to be still
    the one the node mapped), reading the dead node's volatile state (its
    XENHA_SIM_LVM_STATE, /run/xenha-sim/lvm inside the node). Idempotent; nothing to do
    for a node that never activated an LV. Returns the number detached; `node` names it
    in messages only."""
    if not os.path.isdir(os.path.join(lvm_state_dir, "dev")):
        return 0
    return power_off(st.NodeState(root=lvm_state_dir, holders=os.path.join(lvm_state_dir, "holders")))


def detach(dev: str):
    if dev:
        subprocess.run([LOSETUP, "-d", dev], capture_output=True)


def loop_devices():
    """[(/dev/loopN, backing file)] of every bound loop device."""
    out = []
    try:
        names = os.listdir("/sys/block")
    except OSError:
        return out
    for name in names:
        if not name.startswith("loop"):
            continue
        try:
            with open("/sys/block/%s/loop/backing_file" % name, encoding="utf-8") as handle:
                backing = handle.read().strip()
        except OSError:
            continue
        if backing.endswith(" (deleted)"):
            backing = backing[:-len(" (deleted)")]
        out.append(("/dev/" + name, backing))
    return out


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
