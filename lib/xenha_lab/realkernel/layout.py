"""A real-kernel lab on disk: its definition, its directories, the share every node
mounts, the QEMU command line of a node.

    DIR/lab.json                what `lab up --real` was asked for (RealSpec)
    DIR/state.json              written by the supervisor: machines, power, links, events
    DIR/control.sock            the supervisor's control socket (host only)
    DIR/supervisor.log
    DIR/share/                  /share in every node (9p, cache=none: coherent between nodes)
        node/boot, node/agent.py    PID 1's boot script and the channel's agent
        nodes/N.env                 a node's settings (its addresses)
        config/                     corosync.conf, hosts, the pre-seeded cib.xml
        project.tar                 the installed xenha under test, unpacked at every boot
        xenlog/N/                   xenconsoled's guest console logs of node N
        guest/                      the PV guest's kernel and initramfs
    DIR/nodes/N/root.qcow2      the node's root disk: an overlay of the image's root.img
    DIR/nodes/N/data.img        its second disk (/dev/vdb), the LVM physical volume
    DIR/nodes/N/console.log     Xen's and the kernel's console (serial), every boot
    DIR/nodes/N/qemu.log        QEMU's own messages
    DIR/nodes/N/qmp.sock, chan.sock   QMP and the virtio-serial channel

The nodes' names, addresses, cluster name, corosync.conf and pre-seeded CIB are the
namespace lab's (xenha_lab.lab.layout), so scenarios see the same cluster on both tiers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tarfile
from dataclasses import asdict, dataclass, field
from importlib import resources

from xenha_lab.lab import layout as L
from xenha_lab.lab.backend import LabError

BACKEND = "qemu"
QEMU = "qemu-system-x86_64"
XEN_MEMORY_MB = 1536          # per machine; dom0 gets DOM0_MB, the rest is for guests
DOM0_MB = 1024
PLAIN_MEMORY_MB = 1024
DATA_DISK_MB = 1024
GUEST_BRIDGE_ADDRESS = "10.98.0.1/24"   # xenbr0 in every dom0 (guests' vifs only)
write_atomic = L.write_atomic


@dataclass(frozen=True)
class MachineSpec:
    name: str
    nodeid: int
    address: str                 # ip/prefix on the lab network
    extra_addresses: tuple
    mac: str
    port: int                    # this machine's UDP end of the wire
    peer_port: int               # the other end (the other machine, or nobody)


@dataclass(frozen=True)
class RealSpec:
    lab: L.LabSpec               # names, addresses, cluster name, timings: as the namespace lab
    machines: tuple
    images: dict                 # the image builder's products (paths)
    xen: bool = True             # Xen with a PV dom0, or the kernel alone
    memory_mb: int = XEN_MEMORY_MB
    dom0_mb: int = DOM0_MB
    data_disk_mb: int = DATA_DISK_MB
    versions: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.machines]

    def machine(self, name: str) -> MachineSpec:
        for m in self.machines:
            if m.name == name:
                return m
        raise LabError(f"no node {name!r} in this lab (nodes: {', '.join(self.names)})")

    def to_json(self) -> dict:
        return {"backend": BACKEND, "lab": self.lab.to_json(), "machines": [asdict(m) for m in self.machines],
                "images": self.images, "xen": self.xen, "memory_mb": self.memory_mb, "dom0_mb": self.dom0_mb,
                "data_disk_mb": self.data_disk_mb, "versions": self.versions}

    @classmethod
    def from_json(cls, data: dict) -> "RealSpec":
        if data.get("backend") != BACKEND:
            raise ValueError("not a real-kernel lab")
        machines = tuple(MachineSpec(**{**m, "extra_addresses": tuple(m["extra_addresses"])})
                         for m in data["machines"])
        return cls(lab=L.LabSpec.from_json(data["lab"]), machines=machines, images=dict(data["images"]),
                   xen=bool(data["xen"]), memory_mb=int(data["memory_mb"]), dom0_mb=int(data["dom0_mb"]),
                   data_disk_mb=int(data["data_disk_mb"]), versions=dict(data.get("versions", {})))


def is_real_lab(directory: str) -> bool:
    try:
        with open(os.path.join(directory, "lab.json"), encoding="utf-8") as handle:
            return json.load(handle).get("backend") == BACKEND
    except (OSError, ValueError, AttributeError):
        return False


def free_udp_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (the kernel's choice; QEMU binds them a moment later)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


def make_spec(lab: L.LabSpec, images: dict, xen: bool = True, versions: dict | None = None,
              memory_mb: int | None = None) -> RealSpec:
    if not 1 <= len(lab.nodes) <= 2:
        raise LabError(f"the real-kernel lab runs one or two nodes (a QEMU socket wire joins two), "
                       f"not {len(lab.nodes)}")
    ports = free_udp_ports(len(lab.nodes) + 1)
    machines = []
    for index, node in enumerate(lab.nodes):
        peer = ports[1 - index] if len(lab.nodes) == 2 else ports[-1]
        machines.append(MachineSpec(name=node.name, nodeid=node.nodeid,
                                    address=f"{node.address}/{L.NETWORK.prefixlen}",
                                    extra_addresses=tuple(node.extra_addresses),
                                    mac=f"52:54:00:58:48:{node.nodeid:02x}", port=ports[index], peer_port=peer))
    memory = memory_mb or (XEN_MEMORY_MB if xen else PLAIN_MEMORY_MB)
    return RealSpec(lab=lab, machines=tuple(machines), images=dict(images), xen=xen, memory_mb=memory,
                    versions=dict(versions or {}))


class Layout:
    """Host-side paths of a real-kernel lab directory."""

    def __init__(self, directory: str):
        self.dir = os.path.abspath(directory)

    def path(self, *parts) -> str:
        return os.path.join(self.dir, *parts)

    spec_file = property(lambda self: self.path("lab.json"))
    state_file = property(lambda self: self.path("state.json"))
    control = property(lambda self: self.path("control.sock"))
    log = property(lambda self: self.path("supervisor.log"))
    share = property(lambda self: self.path("share"))

    def node(self, name: str, *parts) -> str:
        return self.path("nodes", name, *parts)

    def root_disk(self, name: str) -> str:
        return self.node(name, "root.qcow2")

    def data_disk(self, name: str) -> str:
        return self.node(name, "data.img")

    def console(self, name: str) -> str:
        return self.node(name, "console.log")

    def qemu_log(self, name: str) -> str:
        return self.node(name, "qemu.log")

    def qmp(self, name: str) -> str:
        return self.node(name, "qmp.sock")

    def channel(self, name: str) -> str:
        return self.node(name, "chan.sock")

    def xenlog(self, name: str) -> str:
        return self.path("share", "xenlog", name)

    def read_spec(self) -> RealSpec:
        try:
            with open(self.spec_file, encoding="utf-8") as handle:
                return RealSpec.from_json(json.load(handle))
        except FileNotFoundError:
            raise LabError(f"no lab in {self.dir} (run `xenha lab up --real`)") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LabError(f"{self.spec_file}: unreadable ({error})") from None

    def read_state(self) -> dict:
        try:
            with open(self.state_file, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}


def qemu_marker(lay: Layout, name: str) -> str:
    """What a node's QEMU command line contains (its QMP socket: unique per lab and node)."""
    return f"unix:{lay.qmp(name)},"


def qemu_argv(spec: RealSpec, m: MachineSpec, lay: Layout) -> list[str]:
    """A node: TCG, one vCPU of the model Xen's own CI uses (`-cpu max` crashes dom0), its
    root overlay and data disk on virtio, the share on 9p, the wire to its peer (UDP on
    127.0.0.1), the channel on virtio-serial, the console on the serial port, QMP; it
    exits instead of rebooting."""
    images = spec.images
    kernel_args = f"panic=-1 quiet loglevel=3 xenha.node={m.name}"
    argv = [QEMU, "-name", f"xenha-lab-{m.name}", "-accel", "tcg", "-cpu", "qemu64", "-smp", "1",
            "-m", str(spec.memory_mb), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
    if spec.xen:
        argv += ["-kernel", images["xen"],
                 "-append", f"dom0_mem={spec.dom0_mb}M,max:{spec.dom0_mb}M dom0_max_vcpus=1 console=com1 "
                            "com1=115200,8n1",
                 "-initrd", f"{images['vmlinuz']} console=hvc0 {kernel_args},{images['initrd']}"]
    else:
        argv += ["-kernel", images["vmlinuz"], "-initrd", images["initrd"],
                 "-append", f"console=ttyS0 {kernel_args}"]
    argv += ["-drive", f"file={lay.root_disk(m.name)},if=virtio,format=qcow2",
             "-drive", f"file={lay.data_disk(m.name)},if=virtio,format=raw",
             "-virtfs", f"local,path={lay.share},mount_tag=share,security_model=none,id=share",
             "-netdev", f"socket,id=wire,udp=127.0.0.1:{m.peer_port},localaddr=127.0.0.1:{m.port}",
             "-device", f"virtio-net-pci,netdev=wire,id=nic0,mac={m.mac},romfile=",
             "-device", "virtio-serial-pci,id=vser",
             "-chardev", f"socket,id=chan,path={lay.channel(m.name)},server=on,wait=off",
             "-device", "virtserialport,bus=vser.0,chardev=chan,name=xenha.0",
             "-chardev", f"file,id=con,path={lay.console(m.name)},append=on", "-serial", "chardev:con",
             "-qmp", f"unix:{lay.qmp(m.name)},server=on,wait=off"]
    return argv


# --- making a lab directory ----------------------------------------------------------------------------------------

def node_file(name: str) -> str:
    return resources.files("xenha_lab.realkernel").joinpath("files", name).read_text(encoding="utf-8")


def agent_source() -> str:
    return resources.files("xenha_lab.realkernel").joinpath("agent.py").read_text(encoding="utf-8")


def create(spec: RealSpec, project_tar: str) -> Layout:
    """A fresh lab directory for `spec` (it must not exist); `project_tar` is moved in."""
    lay = Layout(spec.lab.directory)
    for name in spec.names:
        for path in (lay.channel(name), lay.qmp(name)):
            if len(path) > L.SOCKET_PATH_MAX:
                raise LabError(f"lab directory {lay.dir} is too long for a unix socket path; choose a shorter one")
    os.makedirs(lay.dir, mode=0o700)
    for sub in ("node", "nodes", "config", "xenlog", "guest"):
        os.makedirs(os.path.join(lay.share, sub), exist_ok=True)
    write_atomic(lay.spec_file, json.dumps(spec.to_json(), indent=2) + "\n")
    write_atomic(os.path.join(lay.share, "node", "boot"), node_file("boot"), mode=0o755)
    write_atomic(os.path.join(lay.share, "node", "agent.py"), agent_source(), mode=0o755)
    write_atomic(os.path.join(lay.share, "config", "corosync.conf"), L.corosync_conf(spec.lab))
    write_atomic(os.path.join(lay.share, "config", "hosts"), L.hosts_file(spec.lab))
    L.seed_cib(spec.lab, os.path.join(lay.share, "config", "cib.xml"))
    os.chmod(os.path.join(lay.share, "config", "cib.xml"), 0o644)
    shutil.copyfile(spec.images["vmlinuz"], os.path.join(lay.share, "guest", "vmlinuz"))
    shutil.copyfile(spec.images["guest_initrd"], os.path.join(lay.share, "guest", "initrd.gz"))
    shutil.move(project_tar, os.path.join(lay.share, "project.tar"))
    for m in spec.machines:
        os.makedirs(lay.node(m.name), exist_ok=True)
        os.makedirs(lay.xenlog(m.name), exist_ok=True)
        env = (f"ADDRESS={m.address}\nEXTRA_ADDRESSES=\"{' '.join(m.extra_addresses)}\"\n"
               f"NODEID={m.nodeid}\n")
        write_atomic(os.path.join(lay.share, "nodes", f"{m.name}.env"), env)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", spec.images["root_image"], "-F", "raw",
                        lay.root_disk(m.name)], check=True, capture_output=True, timeout=60)
        with open(lay.data_disk(m.name), "wb") as handle:          # sparse
            handle.truncate(spec.data_disk_mb << 20)
    return lay


# --- the project under test ----------------------------------------------------------------------------------------

def installed_project() -> list[tuple[str, str]]:
    """(host path, path in the node) of every installed piece of xenha this process runs
    from (a `make install install-lab` tree, maybe the staged one of `make test`): the
    product, the lab, the agents, the launchers, and the lab's fence agent in /usr/sbin
    (where pacemaker-fenced looks)."""
    import xenha

    from xenha_lab.paths import default_agent

    # make test-real names the staged tree (its own python imports the checkout's packages)
    product = os.environ.get("XENHA_PYLIBDIR") or os.path.dirname(os.path.dirname(os.path.abspath(xenha.__file__)))
    lab = os.environ.get("XENHA_LABLIBDIR") or os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    provider = os.path.dirname(default_agent("xen-domain"))
    sbindir = os.environ.get("XENHA_SBINDIR") or os.path.join(os.path.dirname(os.path.dirname(product)), "sbin")
    fence = os.path.join(lab, "sbin", L.FENCE_AGENT)
    missing = [p for p in (os.path.join(product, "xenha"), os.path.join(lab, "xenha_lab"), provider,
                           os.path.join(sbindir, "xenha"), fence) if not os.path.exists(p)]
    if missing or os.path.basename(product) == "lib" or not os.path.isdir(os.path.join(lab, "sim-bin")):
        raise LabError("xenha is not installed here (make install install-lab, or run through make test-real): "
                       + ", ".join(missing or [product]))
    pieces = [(product, product), (lab, lab), (provider, provider), (fence, "/usr/sbin/" + L.FENCE_AGENT)]
    pieces += [(os.path.join(sbindir, n), os.path.join(sbindir, n)) for n in sorted(os.listdir(sbindir))
               if n.startswith("xenha")]
    return pieces


def pack_project(target: str) -> None:
    """A tar of the installed project, paths as in the node (owner root, no caches)."""
    def clean(info: tarfile.TarInfo):
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info
    with tarfile.open(target, "w") as tar:
        for source, inside in installed_project():
            tar.add(source, arcname=inside.lstrip("/"), filter=clean)
