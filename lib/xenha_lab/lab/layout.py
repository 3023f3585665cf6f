"""A namespace lab on disk: its definition (lab.json), its directories, and the files
every node starts from (corosync.conf, /etc/hosts, the pre-seeded CIB).

    DIR/lab.json              what `lab up` was asked for (nodes, addresses, options)
    DIR/state.json            written by the supervisor: recorded pids, power, links
    DIR/control.sock          the supervisor's control socket (host only)
    DIR/supervisor.log
    DIR/switch/switch.sock    the power switch; /run/xenha-lab/switch in every node
    DIR/shared/               lab-wide shared directory; /run/xenha-lab/shared in every node
    DIR/shared/drbd-net       the DRBD simulator's "network"; /run/xenha-sim/drbd-net
    DIR/shared/guest-io       the simulated guests' logs of acknowledged writes
    DIR/sbin/                 fence_xenha_lab: a layer over every node's /usr/sbin
    DIR/config/               corosync.conf, hosts, cib.xml as generated
    DIR/nodes/N/ram/          the node's /run (its RAM: wiped when it loses power)
    DIR/nodes/N/disk/         the node's disk: writable layers over /etc and /var
                              (so /etc/lvm, /etc/ssh, /var/lib/pacemaker, /var/lib/xenha-sim
                              ... are the node's own and survive a power cut), and /root
    DIR/nodes/N/pv.img        the node's LVM disk, on a loop device (machine.py)
    DIR/nodes/N/bin/          the node's tool directory, first on its PATH
    DIR/nodes/N/console.log   what its init printed, every boot

Inside a node the paths are fixed (NODE_*), whatever DIR is.
"""

from __future__ import annotations

import grp
import ipaddress
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass

from xenha_lab.lab import machine
from xenha_lab.lab.backend import LabError
from xenha_lab.paths import DEFAULT_PATH, default_simbindir

DEFAULT_DIR = "/run/xenha-lab"
NETWORK = ipaddress.ip_network("10.213.0.0/24")
FIRST_HOST = 10                           # n1 is 10.213.0.11, as in reference/lab.md
NODE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
CLUSTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
VG_NAME = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,62}$")
MAX_NODES = 8
FENCE_AGENT = "fence_xenha_lab"
FENCE_DEVICE = "lab-fence"
FENCE_BINDIR = "/usr/sbin"                # where pacemaker-fenced looks for fence_* agents (in a node)

# inside every node
NODE_LAB = "/run/xenha-lab"
NODE_TOOLS = NODE_LAB + "/bin"
NODE_SWITCH_DIR = NODE_LAB + "/switch"
NODE_SWITCH = NODE_SWITCH_DIR + "/switch.sock"
NODE_SHARED = NODE_LAB + "/shared"
NODE_STATE = NODE_LAB + "/state"          # the node init's progress: booting, corosync, up, stopping
NODE_DRBD_NET = "/run/xenha-sim/drbd-net"
NODE_GUEST_IO = NODE_SHARED + "/guest-io"
NODE_PATH = f"{NODE_TOOLS}:{DEFAULT_PATH}"
# every process of a node starts from this (its init, `lab exec`, what sshd runs): the
# simulated guests log their acknowledged writes outside the node; drbd-utils' own
# override says which DRBD module is "loaded" (the simulated kernel's version: there is no
# /proc/drbd nor a module for modinfo to find)
NODE_ENV = {"PATH": NODE_PATH, "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb", "XENHA_SIM_GUEST_IO": NODE_GUEST_IO,
            "DRBD_DRIVER_VERSION_OVERRIDE": "9.2.2"}
DRBD_KERNEL = "xenha-sim-drbd-kernel"
# The simulated DRBD module's usermode_helper parameter (set at every boot, as `modprobe
# drbd usermode_helper=...` would): the kernel runs helpers with its own fixed PATH, where
# the real drbdsetup and lvm2 live; this wrapper (in the lab's layer over /usr/sbin) puts
# the node's tools first, so that crm-fence-peer.9.sh and xenha-resync-snapshot reach the
# simulated kernel.
DRBD_HELPER = "xenha-lab-drbd-helper"
DRBD_HELPER_PARAMETER = "/run/xenha-sim/drbd/usermode_helper"
SOCKET_PATH_MAX = 100                     # sun_path is 108 bytes

# Pacemaker/Corosync state that must start empty on a node's disk (the host's own
# directories, seen underneath, are hidden: "opaque" in the writable layer).
FRESH_DIRS = {
    "var/lib/pacemaker": ("root", "root", 0o755),
    "var/lib/pacemaker/cib": ("hacluster", "haclient", 0o750),
    "var/lib/pacemaker/pengine": ("hacluster", "haclient", 0o750),
    "var/lib/pacemaker/blackbox": ("hacluster", "haclient", 0o750),
    "var/lib/pacemaker/cores": ("hacluster", "haclient", 0o750),
    "var/lib/corosync": ("root", "root", 0o755),
    "var/log/pacemaker": ("hacluster", "haclient", 0o770),
    "var/log/corosync": ("root", "root", 0o755),
    "etc/corosync": ("root", "root", 0o755),
}
OPAQUE = ("var/lib/pacemaker", "var/lib/corosync", "var/log/pacemaker", "var/log/corosync", "etc/corosync")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    nodeid: int
    address: str                          # on the lab network (corosync ring0)
    extra_addresses: tuple = ()           # "ip/prefix", e.g. a description's replication address


@dataclass(frozen=True)
class LabSpec:
    directory: str
    cluster_name: str
    nodes: tuple                          # NodeSpec
    token_ms: int = 1000
    lifetime_s: float = 4 * 3600.0        # the supervisor (and its power switch) ends by itself
    priority_fencing_delay: str = "5s"    # 2-node clusters only
    simbindir: str | None = None          # simulated tools linked into every node's tool dir
    fence_agent: str | None = None        # the installed fence_xenha_lab, shown in the nodes' /usr/sbin
    services: tuple = ()                  # argv lists a node starts at boot, before corosync
    description: str | None = None        # the cluster description the lab was made from
    volume_group: str = "vg0"             # made on every node's disk at the first boot
    guest_io_interval: float | None = None  # seconds between two writes of a simulated guest

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(f"no node {name!r} in this lab (nodes: {', '.join(self.names)})")

    def to_json(self) -> dict:
        data = asdict(self)
        data["nodes"] = [asdict(n) for n in self.nodes]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "LabSpec":
        nodes = tuple(NodeSpec(n["name"], int(n["nodeid"]), n["address"], tuple(n.get("extra_addresses", ())))
                      for n in data["nodes"])
        return cls(directory=data["directory"], cluster_name=data["cluster_name"], nodes=nodes,
                   token_ms=int(data["token_ms"]), lifetime_s=float(data["lifetime_s"]),
                   priority_fencing_delay=data.get("priority_fencing_delay", "5s"),
                   simbindir=data.get("simbindir"), fence_agent=data.get("fence_agent"),
                   services=tuple(tuple(s) for s in data.get("services", ())),
                   description=data.get("description"), volume_group=data.get("volume_group", "vg0"),
                   guest_io_interval=data.get("guest_io_interval"))


def make_spec(directory: str, names, cluster_name: str = "xenha-lab", extra_addresses=None, **options) -> LabSpec:
    """A lab of nodes `names` (n1, n2, ... get 10.213.0.11, .12, ...); every name checked."""
    names = list(names)
    problems = []
    if not 1 <= len(names) <= MAX_NODES:
        problems.append(f"a lab has 1 to {MAX_NODES} nodes, not {len(names)}")
    for name in names:
        if not NODE_NAME.match(name):
            problems.append(f"node name {name!r}: lowercase letters, digits and '-', starting with a letter")
    if len(set(names)) != len(names):
        problems.append("node names repeat")
    if not CLUSTER_NAME.match(cluster_name):
        problems.append(f"cluster name {cluster_name!r}: letters, digits, '_' and '-', at most 32")
    directory = os.path.abspath(directory)
    if len(os.path.join(directory, "switch", "switch.sock")) > SOCKET_PATH_MAX:
        problems.append(f"lab directory {directory} is too long for a unix socket path; choose a shorter one")
    extra = {}
    for name, addresses in (extra_addresses or {}).items():
        checked = []
        for address in addresses:
            try:
                iface = ipaddress.ip_interface(address if "/" in address else address + "/24")
            except ValueError:
                problems.append(f"node {name}: {address!r} is not an IP address")
                continue
            if iface.ip in NETWORK:
                problems.append(f"node {name}: {address} is inside the lab network {NETWORK}")
            checked.append(str(iface))
        extra[name] = tuple(checked)
    if not VG_NAME.match(options.get("volume_group", "vg0")):
        problems.append(f"volume group {options['volume_group']!r}: letters, digits and +_.-, not starting with '-'")
    simbindir = options.get("simbindir")
    if simbindir and not os.path.isdir(simbindir):
        problems.append(f"simulated tools: {simbindir} does not exist (make install-lab)")
    if problems:
        raise LabError("; ".join(problems))
    nodes = tuple(NodeSpec(name, index, str(NETWORK[FIRST_HOST + index]), extra.get(name, ()))
                  for index, name in enumerate(names, start=1))
    return LabSpec(directory=directory, cluster_name=cluster_name, nodes=nodes, **options)


def node_env(spec: LabSpec, name: str) -> dict:
    """The environment every process of node `name` starts from."""
    env = {**NODE_ENV, "HOSTNAME": name}
    if spec.guest_io_interval:
        env["XENHA_SIM_GUEST_IO_INTERVAL"] = f"{spec.guest_io_interval:g}"
    return env


def boot_services(spec: LabSpec) -> list[tuple]:
    """What a node starts before corosync: the simulated DRBD kernel (time passes on its
    own, connections follow the lab network), sshd, then the spec's own services."""
    services = []
    if spec.simbindir and os.path.exists(os.path.join(spec.simbindir, DRBD_KERNEL)):
        services.append((DRBD_KERNEL,))
    services.append(machine.sshd_service())
    return services + [tuple(s) for s in spec.services]


def default_fence_agent() -> str:
    """Where `make install-lab` put fence_xenha_lab: LABLIBDIR/sbin, next to the sim-bin."""
    return os.path.join(os.path.dirname(default_simbindir().rstrip("/")), "sbin", FENCE_AGENT)


class Layout:
    """Host-side paths of a lab directory."""

    def __init__(self, directory: str):
        self.dir = os.path.abspath(directory)

    def path(self, *parts) -> str:
        return os.path.join(self.dir, *parts)

    spec_file = property(lambda self: self.path("lab.json"))
    state_file = property(lambda self: self.path("state.json"))
    control = property(lambda self: self.path("control.sock"))
    switch_dir = property(lambda self: self.path("switch"))
    switch = property(lambda self: self.path("switch", "switch.sock"))
    shared = property(lambda self: self.path("shared"))
    sbin = property(lambda self: self.path("sbin"))
    drbd_net = property(lambda self: self.path("shared", "drbd-net"))
    guest_io = property(lambda self: self.path("shared", "guest-io"))
    config = property(lambda self: self.path("config"))
    log = property(lambda self: self.path("supervisor.log"))

    def node(self, name: str, *parts) -> str:
        return self.path("nodes", name, *parts)

    def ram(self, name: str) -> str:
        return self.node(name, "ram")

    def disk(self, name: str, *parts) -> str:
        return self.node(name, "disk", *parts)

    def tools(self, name: str) -> str:
        return self.node(name, "bin")

    def console(self, name: str) -> str:
        return self.node(name, "console.log")

    def plan(self, name: str) -> str:
        return self.node(name, "plan.json")

    def read_spec(self) -> LabSpec:
        try:
            with open(self.spec_file, encoding="utf-8") as handle:
                return LabSpec.from_json(json.load(handle))
        except FileNotFoundError:
            raise LabError(f"no lab in {self.dir} (run `xenha lab up`)") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LabError(f"{self.spec_file}: unreadable ({error})") from None

    def read_state(self) -> dict:
        try:
            with open(self.state_file, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """All or nothing: a temporary file in the same directory, renamed over `path`."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def corosync_conf(spec: LabSpec) -> str:
    """corosync.conf for the lab (one key per line: a one-line block is a parse error)."""
    lines = ["totem {", "    version: 2", f"    cluster_name: {spec.cluster_name}", "    transport: knet",
             "    crypto_cipher: none", "    crypto_hash: none", f"    token: {spec.token_ms}", "}", "",
             "nodelist {"]
    for node in spec.nodes:
        lines += ["    node {", f"        ring0_addr: {node.address}", f"        name: {node.name}",
                  f"        nodeid: {node.nodeid}", "    }"]
    lines += ["}", "", "quorum {", "    provider: corosync_votequorum"]
    if len(spec.nodes) == 2:
        lines.append("    two_node: 1")
    lines += ["}", "", "logging {", "    to_logfile: yes", "    logfile: /var/log/corosync/corosync.log",
              "    to_stderr: no", "    to_syslog: no", "    timestamp: hires", "}", ""]
    return "\n".join(lines)


def hosts_file(spec: LabSpec) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", ""]
    lines += [f"{node.address}\t{node.name}" for node in spec.nodes]
    return "\n".join(lines) + "\n"


def _run_tool(argv, env=None, timeout: float = 30.0) -> str:
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` did not finish in {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def seed_cib(spec: LabSpec, path: str) -> None:
    """The CIB every node starts from, built offline with Pacemaker's own tools: a short
    dc-deadtime (all nodes online in seconds instead of after the default 20 s), the
    lab's fence device (enabled once every node is online), resource stickiness, no
    throttling by the host's load, and for
    two nodes priority-fencing-delay (the node holding the important resource wins a
    fencing race)."""
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "CIB_file": path}
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(_run_tool(["cibadmin", "--empty"], env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}))
    # load-threshold: every node reads the one host's load average, so Pacemaker's throttle
    # (one action at a time on a "busy" node) would follow the whole lab's load, not the node's
    properties = {"dc-deadtime": "2s", "stonith-enabled": "false", "cluster-name": spec.cluster_name,
                  "load-threshold": "2000%"}
    if len(spec.nodes) == 2:
        properties["priority-fencing-delay"] = spec.priority_fencing_delay
    for name, value in properties.items():
        _run_tool(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value], env=env)
    _run_tool(["cibadmin", "--create", "-o", "configuration", "--xml-text",
               '<rsc_defaults><meta_attributes id="rsc-options"><nvpair id="rsc-options-resource-stickiness" '
               'name="resource-stickiness" value="100"/></meta_attributes></rsc_defaults>'], env=env)
    hosts = " ".join(spec.names)       # checked names: no quoting needed in XML
    _run_tool(["cibadmin", "--create", "-o", "resources", "--xml-text",
               f'<primitive id="{FENCE_DEVICE}" class="stonith" type="{FENCE_AGENT}">'
               f'<instance_attributes id="{FENCE_DEVICE}-instance_attributes">'
               f'<nvpair id="{FENCE_DEVICE}-instance_attributes-pcmk_host_list" name="pcmk_host_list" '
               f'value="{hosts}"/></instance_attributes><operations>'
               f'<op id="{FENCE_DEVICE}-monitor-interval-30s" interval="30s" name="monitor"/>'
               f'</operations></primitive>'], env=env)
    _run_tool(["crm_verify", "--xml-file", path], env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"})


def _ids(user: str, group: str) -> tuple[int, int]:
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        raise LabError(f"user {user} or group {group} missing (is pacemaker installed?)") from None


def create(spec: LabSpec) -> Layout:
    """Write a fresh lab directory for `spec` (the directory must not exist)."""
    lay = Layout(spec.directory)
    os.makedirs(lay.dir, mode=0o700)
    for directory in (lay.switch_dir, lay.shared, lay.drbd_net, lay.guest_io, lay.config, lay.sbin):
        os.makedirs(directory, exist_ok=True)
    if spec.fence_agent:
        shutil.copyfile(spec.fence_agent, os.path.join(lay.sbin, FENCE_AGENT))
        os.chmod(os.path.join(lay.sbin, FENCE_AGENT), 0o755)
    write_atomic(os.path.join(lay.sbin, DRBD_HELPER),
                 "#!/bin/sh\n# the simulated DRBD module's usermode helper in a lab node (xenha_lab.lab.layout)\n"
                 f"PATH={NODE_TOOLS}:$PATH; export PATH\n"
                 f"DRBD_DRIVER_VERSION_OVERRIDE={NODE_ENV['DRBD_DRIVER_VERSION_OVERRIDE']}; "
                 "export DRBD_DRIVER_VERSION_OVERRIDE\n"
                 'exec /usr/sbin/drbdadm "$@"\n', mode=0o755)
    write_atomic(lay.spec_file, json.dumps(spec.to_json(), indent=2) + "\n")
    conf, hosts = corosync_conf(spec), hosts_file(spec)
    write_atomic(lay.path("config", "corosync.conf"), conf)
    write_atomic(lay.path("config", "hosts"), hosts)
    seed = lay.path("config", "cib.xml")
    seed_cib(spec, seed)
    for node in spec.nodes:
        _create_node(lay, spec, node, conf, hosts, seed)
    machine.ssh_identities(lay, spec)
    return lay


def _create_node(lay: Layout, spec: LabSpec, node: NodeSpec, conf: str, hosts: str, seed: str) -> None:
    name = node.name
    for directory in (lay.ram(name), lay.tools(name), lay.disk(name, "etc"), lay.disk(name, "etc.work"),
                      lay.disk(name, "var"), lay.disk(name, "var.work"), lay.disk(name, "root"),
                      lay.disk(name, "etc", "lvm"), lay.disk(name, "etc", "ssh")):
        os.makedirs(directory, exist_ok=True)
    for rel, (user, group, mode) in FRESH_DIRS.items():
        path = lay.disk(name, rel)
        os.makedirs(path, exist_ok=True)
        os.chown(path, *_ids(user, group))
        os.chmod(path, mode)
    for rel in OPAQUE:
        os.setxattr(lay.disk(name, rel), "trusted.overlay.opaque", b"y")
    os.makedirs(lay.disk(name, "var", "lib", "xenha-sim"), exist_ok=True)
    write_atomic(lay.disk(name, "etc", "corosync", "corosync.conf"), conf)
    write_atomic(lay.disk(name, "etc", "hosts"), hosts)
    write_atomic(lay.disk(name, "etc", "hostname"), name + "\n")
    cib = lay.disk(name, "var", "lib", "pacemaker", "cib", "cib.xml")
    shutil.copyfile(seed, cib)
    os.chown(cib, *_ids("hacluster", "haclient"))
    os.chmod(cib, 0o600)
    if spec.simbindir:
        for tool in sorted(os.listdir(spec.simbindir)):
            os.symlink(os.path.join(spec.simbindir, tool), os.path.join(lay.tools(name), tool))
    env = node_env(spec, name)
    write_atomic(lay.disk(name, "etc", "ssh", "sshd_config"), machine.sshd_config(node, env))
    write_atomic(lay.disk(name, "etc", "lvm", "lvm.conf"), machine.lvm_conf(machine.attach_disk(lay, name)))
    # no syslog: a node must not write to the host's /dev/log (its /dev shows the host's)
    plan = {"name": name, "lab": lay.dir, "env": {**env, "PCMK_logfacility": "none"},
            "services": [list(s) for s in boot_services(spec)], "corosync_timeout": 30.0, "stop_timeout": 20.0,
            "ram_files": {DRBD_HELPER_PARAMETER: f"{FENCE_BINDIR}/{DRBD_HELPER}\n"}}
    write_atomic(lay.plan(name), json.dumps(plan, indent=2) + "\n")
