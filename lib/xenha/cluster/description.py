"""Load and validate a cluster description (TOML, read with tomllib).

Every problem is reported with the file, the key, what is wrong and what is allowed,
e.g. `howto.toml: vms[1].replicas: unknown node 'mk3' (nodes: mk1, mk2)`. All problems
are collected, not only the first.

A description (see cluster-config/examples/):

    [cluster]             name, fencing (required unless test_cluster = true)
    [defaults]            volume_group, DRBD port/minor bases, protocol, rates, policies
    [[nodes]]             name, replication_address, migration_address
    [[vms]]               name, memory, vcpus, kernel|bootloader, disk_size, network,
                          replicas, preferred_node, optional drbd_resource/minor/port
"""

import ipaddress
import tomllib
from dataclasses import dataclass, field

# Names must be valid for DRBD resources, LVM LVs, Xen domains and Pacemaker ids at once:
# letters, digits, underscore, dash (not first), at most 48 characters (the LV name gets
# a prefix and snapshots a suffix; LVM allows 127).
NAME_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
NAME_CHARS = NAME_FIRST + "0123456789_-"
NAME_MAX = 48
NODE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
PROTOCOLS = ("A", "B", "C")
SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class DescriptionError(Exception):
    """Everything wrong with a description, one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Fencing:
    agent: str = ""
    options: dict = field(default_factory=dict)          # passed to every device
    devices: dict = field(default_factory=dict)          # node -> {option: value}


@dataclass(frozen=True)
class Defaults:
    volume_group: str = "vg0"
    lv_prefix: str = "vm_"
    drbd_resource_prefix: str = "vm_"
    drbd_port_base: int = 7789
    drbd_minor_base: int = 1
    protocol: str = "C"
    resync_rate: str = "100M"
    verify_alg: str = "sha1"
    drbd_version: int = 9
    resync_snapshot: str = "20%"                       # "" disables the snapshot handlers
    migration_limit: int = 1
    stickiness: int = 100
    migration_transport: str = "ssh -o BatchMode=yes -o ConnectTimeout=10"
    xen_config_dir: str = "/etc/xen"
    drbd_config_dir: str = "/etc/drbd.d"
    handler_dir: str = "/usr/local/sbin"


@dataclass(frozen=True)
class Node:
    name: str
    replication_address: str
    migration_address: str


@dataclass(frozen=True)
class Vm:
    name: str
    memory: int                      # MiB
    vcpus: int
    kernel: str
    bootloader: str
    extra: str
    disk_size: int                   # bytes
    network: str
    replicas: tuple
    preferred_node: str
    drbd_resource: str
    drbd_minor: int | None           # None: allocated
    drbd_port: int | None


@dataclass(frozen=True)
class Description:
    path: str
    name: str
    test_cluster: bool
    fencing: Fencing
    defaults: Defaults
    nodes: tuple
    vms: tuple

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def lv_name(self, vm: Vm) -> str:
        return f"{self.defaults.lv_prefix}{vm.name}"


def parse_size(text) -> int | None:
    """Bytes from 512M, 512MiB, 20G, 1T or 4096 (binary units, like lvm); None if unreadable."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text if text > 0 else None
    if not isinstance(text, str):
        return None
    size = text.strip().lower()
    for suffix in ("ib", "b"):
        if size.endswith(suffix) and size[:-len(suffix)][-1:] in SIZE_UNITS:
            size = size[:-len(suffix)]
            break
    factor = SIZE_UNITS.get(size[-1:], 1)
    number = size[:-1] if size[-1:] in SIZE_UNITS else size
    if not number.isdigit() or int(number) == 0:
        return None
    return int(number) * factor


def valid_name(name) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= NAME_MAX and name[0] in NAME_FIRST
            and all(c in NAME_CHARS for c in name))


def valid_node_name(name) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 63 and name[0].isalnum()
            and all(c in NODE_CHARS for c in name.lower()))


class _Checker:
    """Reads typed values out of parsed TOML, collecting problems with their key path."""

    def __init__(self, path: str):
        self.path = path
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.path}: {key}: {message}")

    def table(self, data, key: str) -> dict:
        value = data.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            self.problem(key, f"must be a table, not {type(value).__name__}")
            return {}
        return value

    def unknown_keys(self, data: dict, key: str, allowed) -> None:
        for name in data:
            if name not in allowed:
                self.problem(f"{key}.{name}" if key else name,
                             f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def value(self, data: dict, key: str, name: str, kind, default=None, required=False):
        if name not in data:
            if required:
                self.problem(f"{key}.{name}" if key else name, "is required")
            return default
        value = data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            expected = " or ".join(k.__name__.replace("str", "string").replace("int", "integer") for k in kinds)
            self.problem(f"{key}.{name}" if key else name, f"must be a {expected}, not {value!r}")
            return default
        return value


def load(path: str) -> Description:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise DescriptionError([f"{path}: no such file"]) from None
    except OSError as error:
        raise DescriptionError([f"{path}: cannot read: {error.strerror}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise DescriptionError([f"{path}: not valid TOML: {error}"]) from None
    return from_data(data, path)


def from_data(data: dict, path: str = "<cluster>") -> Description:
    check = _Checker(path)
    check.unknown_keys(data, "", ("cluster", "defaults", "nodes", "vms"))
    cluster = check.table(data, "cluster")
    check.unknown_keys(cluster, "cluster", ("name", "test_cluster", "fencing"))
    name = check.value(cluster, "cluster", "name", str, required=True) or ""
    if name and not valid_name(name):
        check.problem("cluster.name", f"{name!r} is not a valid name (letters, digits, _ and -, "
                                      f"at most {NAME_MAX}, starting with a letter)")
    test_cluster = check.value(cluster, "cluster", "test_cluster", bool, default=False)
    fencing = read_fencing(check, cluster)
    defaults = read_defaults(check, data)
    nodes = read_nodes(check, data)
    node_names = [n.name for n in nodes]
    vms = read_vms(check, data, defaults, node_names)
    if not test_cluster and not fencing.agent:
        check.problem("cluster.fencing", "fencing is required: configure [cluster.fencing] with an agent "
                                         "(or set cluster.test_cluster = true for a lab without fencing)")
    for device_node in fencing.devices:
        if device_node not in node_names:
            check.problem(f"cluster.fencing.devices.{device_node}",
                          f"unknown node (nodes: {', '.join(node_names)})")
    if fencing.agent and fencing.devices:
        for node in node_names:
            if node not in fencing.devices:
                check.problem("cluster.fencing.devices", f"no fence device for node {node}")
    if check.problems:
        raise DescriptionError(check.problems)
    return Description(path, name, test_cluster, fencing, defaults, tuple(nodes), tuple(vms))


def read_fencing(check: _Checker, cluster: dict) -> Fencing:
    data = check.table(cluster, "cluster.fencing")
    if not data:
        return Fencing()
    check.unknown_keys(data, "cluster.fencing", ("agent", "options", "devices"))
    agent = check.value(data, "cluster.fencing", "agent", str, default="", required=True) or ""
    if agent and not agent.startswith("fence_"):
        check.problem("cluster.fencing.agent", f"{agent!r} is not a fence agent name (fence_...)")
    options = check.table(data, "cluster.fencing.options")
    devices = check.table(data, "cluster.fencing.devices")
    for node, settings in devices.items():
        if not isinstance(settings, dict):
            check.problem(f"cluster.fencing.devices.{node}", "must be a table of fence agent options")
    return Fencing(agent, {k: str(v) for k, v in options.items()},
                   {n: {k: str(v) for k, v in s.items()} for n, s in devices.items() if isinstance(s, dict)})


def read_defaults(check: _Checker, data: dict) -> Defaults:
    raw = check.table(data, "defaults")
    base = Defaults()
    allowed = Defaults.__dataclass_fields__
    check.unknown_keys(raw, "defaults", allowed)
    values = {}
    for name, spec in allowed.items():
        default = getattr(base, name)
        values[name] = check.value(raw, "defaults", name, type(default), default=default)
    if values["protocol"] not in PROTOCOLS:
        check.problem("defaults.protocol", f"{values['protocol']!r} is not a DRBD protocol ({', '.join(PROTOCOLS)})")
    if values["drbd_version"] not in (8, 9):
        check.problem("defaults.drbd_version", f"{values['drbd_version']} is not supported (8 for 8.4, or 9)")
    if not 1 <= values["drbd_port_base"] <= 65535:
        check.problem("defaults.drbd_port_base", f"{values['drbd_port_base']} is not a port (1-65535)")
    if not 0 <= values["drbd_minor_base"] < 1048576:
        check.problem("defaults.drbd_minor_base", f"{values['drbd_minor_base']} is not a DRBD minor (0-1048575)")
    if values["migration_limit"] < 1:
        check.problem("defaults.migration_limit", "must be at least 1")
    if not valid_name(values["volume_group"]):
        check.problem("defaults.volume_group", f"{values['volume_group']!r} is not a valid volume group name")
    snapshot = values["resync_snapshot"]
    if snapshot and not (snapshot.endswith("%") and snapshot[:-1].isdigit() and 0 < int(snapshot[:-1]) <= 100) \
            and parse_size(snapshot) is None:
        check.problem("defaults.resync_snapshot", f"{snapshot!r}: use a percentage (20%), a size (2G) or \"\" for none")
    return Defaults(**values)


def read_nodes(check: _Checker, data: dict) -> list[Node]:
    raw = data.get("nodes", [])
    if not isinstance(raw, list) or not raw:
        check.problem("nodes", "at least two [[nodes]] are needed")
        return []
    nodes, seen_names, seen_addresses = [], {}, {}
    for index, entry in enumerate(raw):
        key = f"nodes[{index}]"
        if not isinstance(entry, dict):
            check.problem(key, "must be a table")
            continue
        check.unknown_keys(entry, key, ("name", "replication_address", "migration_address"))
        name = check.value(entry, key, "name", str, required=True)
        replication = check.value(entry, key, "replication_address", str, required=True)
        migration = check.value(entry, key, "migration_address", str, default=None) or name
        if name is not None:
            if not valid_node_name(name):
                check.problem(f"{key}.name", f"{name!r} is not a valid host name")
            if name in seen_names:
                check.problem(f"{key}.name", f"duplicate node {name!r} (also nodes[{seen_names[name]}])")
            seen_names[name] = index
        if replication is not None:
            try:
                ipaddress.ip_address(replication)
            except ValueError:
                check.problem(f"{key}.replication_address", f"{replication!r} is not an IP address (DRBD needs one)")
            if replication in seen_addresses:
                check.problem(f"{key}.replication_address",
                              f"{replication} is also the address of nodes[{seen_addresses[replication]}]")
            seen_addresses[replication] = index
        if name and replication:
            nodes.append(Node(name, replication, migration))
    if len(raw) < 2:
        check.problem("nodes", "at least two nodes are needed for replicated storage")
    return nodes


VM_KEYS = ("name", "memory", "vcpus", "kernel", "bootloader", "extra", "disk_size", "network", "replicas",
           "preferred_node", "drbd_resource", "drbd_minor", "drbd_port")


def read_vms(check: _Checker, data: dict, defaults: Defaults, node_names) -> list[Vm]:
    raw = data.get("vms", [])
    if not isinstance(raw, list):
        check.problem("vms", "must be an array of tables ([[vms]])")
        return []
    vms, names, resources, minors, ports = [], {}, {}, {}, {}
    for index, entry in enumerate(raw):
        key = f"vms[{index}]"
        if not isinstance(entry, dict):
            check.problem(key, "must be a table")
            continue
        check.unknown_keys(entry, key, VM_KEYS)
        name = check.value(entry, key, "name", str, required=True)
        if name is not None:
            if not valid_name(name):
                check.problem(f"{key}.name", f"{name!r} is not valid for DRBD, LVM and Xen (letters, digits, "
                                             f"_ and -, at most {NAME_MAX}, starting with a letter)")
            if name in names:
                check.problem(f"{key}.name", f"duplicate VM {name!r} (also vms[{names[name]}])")
            names[name] = index
        memory = check.value(entry, key, "memory", int, required=True)
        if memory is not None and memory < 32:
            check.problem(f"{key}.memory", f"{memory} MiB is too small (at least 32)")
        vcpus = check.value(entry, key, "vcpus", int, default=1)
        if vcpus is not None and not 1 <= vcpus <= 512:
            check.problem(f"{key}.vcpus", f"{vcpus} is not a vCPU count (1-512)")
        kernel = check.value(entry, key, "kernel", str, default="")
        bootloader = check.value(entry, key, "bootloader", str, default="")
        if bool(kernel) == bool(bootloader):
            check.problem(key, "needs exactly one of kernel or bootloader")
        raw_size = entry.get("disk_size")
        disk_size = parse_size(raw_size)
        if raw_size is None:
            check.problem(f"{key}.disk_size", "is required")
        elif disk_size is None:
            check.problem(f"{key}.disk_size", f"{raw_size!r} is not a size (e.g. 512M, 20G)")
        elif disk_size < (4 << 20):
            check.problem(f"{key}.disk_size", f"{raw_size!r} is too small (DRBD metadata needs room; at least 4M)")
        replicas = entry.get("replicas", node_names[:2] if len(node_names) == 2 else None)
        if replicas is None:
            check.problem(f"{key}.replicas", "is required when the cluster has more than two nodes")
            replicas = []
        elif not isinstance(replicas, list) or not all(isinstance(r, str) for r in replicas):
            check.problem(f"{key}.replicas", "must be a list of node names")
            replicas = []
        for replica in replicas:
            if replica not in node_names:
                check.problem(f"{key}.replicas", f"unknown node {replica!r} (nodes: {', '.join(node_names)})")
        if len(set(replicas)) != len(replicas):
            check.problem(f"{key}.replicas", "names a node twice")
        if replicas and len(replicas) != 2:
            check.problem(f"{key}.replicas", f"{len(replicas)} replicas: live migration needs DRBD dual-primary, "
                                              "which allows exactly two")
        preferred = check.value(entry, key, "preferred_node", str, default="")
        if preferred and preferred not in replicas:
            check.problem(f"{key}.preferred_node", f"{preferred!r} is not one of its replicas ({', '.join(replicas)})")
        resource = check.value(entry, key, "drbd_resource", str, default="") or (
            f"{defaults.drbd_resource_prefix}{name}" if name else "")
        if resource:
            if not valid_name(resource):
                check.problem(f"{key}.drbd_resource", f"{resource!r} is not a valid DRBD resource name")
            if resource in resources:
                check.problem(f"{key}.drbd_resource", f"duplicate DRBD resource {resource!r} "
                                                      f"(also vms[{resources[resource]}])")
            resources[resource] = index
        minor = check.value(entry, key, "drbd_minor", int)
        if minor is not None:
            if not 0 <= minor < 1048576:
                check.problem(f"{key}.drbd_minor", f"{minor} is not a DRBD minor (0-1048575)")
            if minor in minors:
                check.problem(f"{key}.drbd_minor", f"duplicate minor {minor} (also vms[{minors[minor]}])")
            minors[minor] = index
        port = check.value(entry, key, "drbd_port", int)
        if port is not None:
            if not 1 <= port <= 65535:
                check.problem(f"{key}.drbd_port", f"{port} is not a port (1-65535)")
            if port in ports:
                check.problem(f"{key}.drbd_port", f"duplicate port {port} (also vms[{ports[port]}])")
            ports[port] = index
        if name is not None and memory is not None and disk_size:
            vms.append(Vm(name, memory, vcpus or 1, kernel or "", bootloader or "",
                          check.value(entry, key, "extra", str, default=""), disk_size,
                          check.value(entry, key, "network", str, default="xenbr0"), tuple(replicas),
                          preferred, resource, minor, port))
    return vms
