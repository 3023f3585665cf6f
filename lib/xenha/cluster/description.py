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

Every value that ends up in a rendered file (a DRBD resource file, an xl config, the pcs
script, the CIB) is checked here against the grammar of that file (xenha.names): what
is accepted can be written without quoting, and is read back by the tool as meant.
Names derived from others (the LV `<lv_prefix><vm>`, its resync snapshot, the DRBD
resource `<drbd_resource_prefix><vm>`) are checked as what they become.
"""

import ipaddress
import json
import os
import stat
import tomllib
from dataclasses import dataclass, field

from xenha import names

PROTOCOLS = ("A", "B", "C")
SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
ASCII_DIGITS = frozenset("0123456789")
MAX_PORT = 65535
MAX_MINOR = (1 << 20) - 1                 # DRBD 9: minors 0..1048575
MIN_DISK = 4 << 20                        # room for DRBD's internal metadata
MAX_DISK = 1 << 50                        # 1 PiB, DRBD 9's largest device
MAX_MEMORY_MIB = 16 << 20                 # 16 TiB
MAX_RESYNC_RATE_KIB = 4 << 20             # drbdsetup: resync-rate at most 4 GiB/s
RATE_UNITS_KIB = {"": 1, "k": 1, "m": 1 << 10, "g": 1 << 20}
MAX_SCORE = 1000000                       # Pacemaker's INFINITY
# The name xenha-resync-snapshot gives a snapshot: `<lv><suffix>` (must be an LV name too).
RESYNC_SNAPSHOT_SUFFIX = "-before-resync"
# Reading: descriptions are small; these bounds keep a hostile file from exhausting
# memory or time (tomllib's cost grows with the square of a key's dotted depth).
MAX_FILE_BYTES = 4 << 20
MAX_NESTING_PER_LINE = 256                # '.', '[' and '{' on one line
BARE_KEY_CHARS = frozenset(names.LOWER + names.UPPER + names.DIGITS + "_-")


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
    replication_address: str         # canonical form (IPv4 or IPv6)
    migration_address: str           # IP address or host name; the node name by default

    @property
    def replication_family(self) -> str:
        return "ipv6" if ":" in self.replication_address else "ipv4"


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

    def vm_key(self, name: str) -> str:
        """Where a VM is described, for messages: `vms[3]`."""
        index = next((i for i, vm in enumerate(self.vms) if vm.name == name), None)
        return f"vms[{index}]" if index is not None else f"vms.{name}"


def show(value, limit: int = 60) -> str:
    """A user's value in a message: quoted, non-ASCII and control characters escaped
    (a look-alike letter shows as \\u0430), long values cut."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def key_join(prefix: str, name) -> str:
    """A TOML key path for messages: bare keys as they are, others quoted and escaped."""
    name = str(name)
    part = name if name and all(c in BARE_KEY_CHARS for c in name) else json.dumps(name)
    return f"{prefix}.{part}" if prefix else part


def parse_size(text) -> int | None:
    """Bytes from 512M, 512MiB, 20G, 1T or 4096 (binary units, like lvm); None if
    unreadable. ASCII digits only (int() would take other scripts' digits)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text if text > 0 else None
    if not isinstance(text, str):
        return None
    size = text.lower()
    for suffix in ("ib", "b"):
        if size.endswith(suffix) and size[:-len(suffix)][-1:] in SIZE_UNITS:
            size = size[:-len(suffix)]
            break
    factor = SIZE_UNITS.get(size[-1:], 1)
    number = size[:-1] if size[-1:] in SIZE_UNITS else size
    if not number or not all(c in ASCII_DIGITS for c in number) or int(number) == 0:
        return None
    return int(number) * factor


def format_size(size: int) -> str:
    """The shortest exact spelling of a size that lvm and xenha-resync-snapshot read: 2G, 512M, 4096."""
    for unit in ("t", "g", "m", "k"):
        if size % SIZE_UNITS[unit] == 0:
            return f"{size // SIZE_UNITS[unit]}{unit.upper()}"
    return str(size)


def parse_percent(text) -> int | None:
    if isinstance(text, str) and text.endswith("%") and 1 < len(text) <= 4 and \
            all(c in ASCII_DIGITS for c in text[:-1]) and 0 < int(text[:-1]) <= 100:
        return int(text[:-1])
    return None


def parse_rate_kib(text) -> int | None:
    """KiB/s from a DRBD rate (100M, 40960k, 1G, 500); None if unreadable."""
    if not isinstance(text, str) or not text:
        return None
    unit = text[-1].lower() if text[-1] not in ASCII_DIGITS else ""
    number = text[:-1] if unit else text
    if unit not in RATE_UNITS_KIB or not number or not all(c in ASCII_DIGITS for c in number) \
            or len(number) > 12:
        return None
    return int(number) * RATE_UNITS_KIB[unit]


def check_address(text) -> tuple[str | None, str | None]:
    """(canonical IP address, None) or (None, why not)."""
    if not isinstance(text, str) or not text.isascii() or "%" in text:
        return None, "is not an IP address" + (" (scope ids are not supported)" if "%" in str(text) else "")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None, "is not an IP address"
    if address.is_unspecified or address.is_multicast:
        return None, "is not a unicast address"
    return address.compressed, None


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
                self.problem(key_join(key, name), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def value(self, data: dict, key: str, name: str, kind, default=None, required=False):
        where = key_join(key, name)
        if name not in data:
            if required:
                self.problem(where, "is required")
            return default
        value = data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            expected = " or ".join(k.__name__.replace("str", "string").replace("int", "integer") for k in kinds)
            self.problem(where, f"must be a {expected}, not {show(value)}")
            return default
        return value

    def grammar(self, key: str, value, check, what: str) -> bool:
        """Check `value` with a names.check_* function; a problem if it is refused."""
        why = check(value)
        if why:
            self.problem(key, f"{show(value)} is not {what}: {why}")
        return why is None

    def number(self, key: str, value, low: int, high: int, what: str) -> bool:
        if value is not None and not low <= value <= high:
            self.problem(key, f"{value} is not {what} ({low}-{high})")
            return False
        return True


def read_toml(path: str, what: str = "description") -> dict:
    """A TOML file's data, or a DescriptionError saying what is wrong with the file: not
    there, not a regular file (a FIFO would block), too large, not UTF-8, not TOML,
    nested too deeply."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise DescriptionError([f"{path}: no such file"]) from None
    except OSError as error:
        raise DescriptionError([f"{path}: cannot read the {what}: {error.strerror}"]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DescriptionError([f"{path}: the {what} is not a regular file"])
        if info.st_size > MAX_FILE_BYTES:
            raise DescriptionError([f"{path}: the {what} is larger than {MAX_FILE_BYTES >> 20} MiB"])
        with os.fdopen(os.dup(fd), "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise DescriptionError([f"{path}: cannot read the {what}: {error.strerror}"]) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise DescriptionError([f"{path}: the {what} is larger than {MAX_FILE_BYTES >> 20} MiB"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise DescriptionError([f"{path}: line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); "
                                f"the {what} must be a TOML file"]) from None
    for number, line in enumerate(text.split("\n"), start=1):
        if line.count(".") + line.count("[") + line.count("{") > MAX_NESTING_PER_LINE:
            raise DescriptionError([f"{path}: line {number}: nested too deeply (more than "
                                    f"{MAX_NESTING_PER_LINE} '.', '[' and '{{' on one line)"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DescriptionError([f"{path}: not valid TOML: {error}"]) from None
    except RecursionError:
        raise DescriptionError([f"{path}: not valid TOML: nested too deeply"]) from None


def load(path: str) -> Description:
    return from_data(read_toml(path), path)


def from_data(data: dict, path: str = "<cluster>") -> Description:
    check = _Checker(path)
    if not isinstance(data, dict):
        raise DescriptionError([f"{path}: must be a TOML document (a table)"])
    check.unknown_keys(data, "", ("cluster", "defaults", "nodes", "vms"))
    cluster = check.table(data, "cluster")
    check.unknown_keys(cluster, "cluster", ("name", "test_cluster", "fencing"))
    name = check.value(cluster, "cluster", "name", str, required=True) or ""
    if name:
        check.grammar("cluster.name", name, names.check_identity, "a valid name (letters, digits, _ and -, "
                                                                   f"at most {names.IDENTITY_MAX}, starting with a letter)")
    test_cluster = check.value(cluster, "cluster", "test_cluster", bool, default=False)
    defaults = read_defaults(check, data)
    nodes = read_nodes(check, data)
    node_names = [n.name for n in nodes]
    fencing = read_fencing(check, cluster, node_names)
    vms = read_vms(check, data, defaults, node_names, {n.name: n for n in nodes})
    if not test_cluster and not fencing.agent:
        check.problem("cluster.fencing", "fencing is required: configure [cluster.fencing] with an agent "
                                         "(or set cluster.test_cluster = true for a lab without fencing)")
    if check.problems:
        raise DescriptionError(check.problems)
    return Description(path, name, test_cluster, fencing, defaults, tuple(nodes), tuple(vms))


def _option_value(check: _Checker, key: str, value) -> str | None:
    """A fence agent option as pcs and the CIB carry it: one printable line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        check.problem(key, f"must be a string, an integer or a boolean, not {type(value).__name__}")
        return None
    why = names.check_line(value)
    if why:
        check.problem(key, f"{show(value)} cannot be passed to the fence agent: {why}")
        return None
    return value


def _options(check: _Checker, key: str, table: dict) -> dict:
    options = {}
    for option, value in table.items():
        where = key_join(key, option)
        why = names.check_pacemaker_id(option)
        if why or "." in option:
            check.problem(where, f"{show(option)} is not a fence agent option name: "
                                 f"{why or 'has a dot'} (letters, digits, _ and -)")
            continue
        text = _option_value(check, where, value)
        if text is not None:
            options[option] = text
    return options


def read_fencing(check: _Checker, cluster: dict, node_names) -> Fencing:
    data = check.table(cluster, "cluster.fencing")
    if not data:
        return Fencing()
    check.unknown_keys(data, "cluster.fencing", ("agent", "options", "devices"))
    agent = check.value(data, "cluster.fencing", "agent", str, default="", required=True) or ""
    if agent and not (agent.startswith("fence_") and len(agent) > 6 and names.check_pacemaker_id(agent) is None
                      and "." not in agent):
        check.problem("cluster.fencing.agent", f"{show(agent)} is not a fence agent name (fence_...)")
        agent = ""
    options = _options(check, "cluster.fencing.options", check.table(data, "cluster.fencing.options"))
    devices = {}
    for node, settings in check.table(data, "cluster.fencing.devices").items():
        key = key_join("cluster.fencing.devices", node)
        if node not in node_names:
            check.problem(key, f"unknown node (nodes: {', '.join(node_names)})")
        if not isinstance(settings, dict):
            check.problem(key, "must be a table of fence agent options")
            continue
        devices[node] = _options(check, key, settings)
    if agent and devices:
        for node in node_names:
            if node not in devices:
                check.problem("cluster.fencing.devices", f"no fence device for node {node}")
    return Fencing(agent, options, devices)


def read_defaults(check: _Checker, data: dict) -> Defaults:
    raw = check.table(data, "defaults")
    base = Defaults()
    allowed = Defaults.__dataclass_fields__
    check.unknown_keys(raw, "defaults", allowed)
    values = {}
    for name in allowed:
        default = getattr(base, name)
        values[name] = check.value(raw, "defaults", name, type(default), default=default)
    if values["protocol"] not in PROTOCOLS:
        check.problem("defaults.protocol", f"{show(values['protocol'])} is not a DRBD protocol "
                                           f"({', '.join(PROTOCOLS)})")
    if values["drbd_version"] not in (8, 9):
        check.problem("defaults.drbd_version", f"{values['drbd_version']} is not supported (8 for 8.4, or 9)")
    check.number("defaults.drbd_port_base", values["drbd_port_base"], 1, MAX_PORT, "a port")
    check.number("defaults.drbd_minor_base", values["drbd_minor_base"], 0, MAX_MINOR, "a DRBD minor")
    check.number("defaults.migration_limit", values["migration_limit"], 1, 1000, "a migration limit")
    check.number("defaults.stickiness", values["stickiness"], -MAX_SCORE, MAX_SCORE, "a Pacemaker score")
    # The VG and the LV prefix also make the backing device path of every DRBD resource
    # file, `disk /dev/<vg>/<prefix><vm>;`, where drbdadm ends a word at "+".
    if check.grammar("defaults.volume_group", values["volume_group"], names.check_vg_name, "a volume group name"):
        check.grammar("defaults.volume_group", values["volume_group"],
                      lambda vg: names.check_drbd_word(f"/dev/{vg}/x"), "usable in DRBD's backing device path")
    why = names.check_drbd_word(f"/dev/vg/{values['lv_prefix']}x")
    if why:
        check.problem("defaults.lv_prefix", f"{show(values['lv_prefix'])} is not usable in DRBD's backing device "
                                            f"path: {why}")
    # Prefixes are checked as part of the names they make (see read_vms), and here with
    # the longest VM name: whatever the VM is called, the LV, its resync snapshot and
    # the DRBD resource stay within LVM's and drbdadm's limits.
    longest = "x" * names.IDENTITY_MAX
    for key, check_name, suffix, limit, what in (
            ("lv_prefix", names.check_lv_name, RESYNC_SNAPSHOT_SUFFIX, names.LVM_NAME_MAX, "an LV name prefix"),
            ("drbd_resource_prefix", names.check_drbd_resource_name, "", names.DRBD_NAME_MAX,
             "a DRBD resource name prefix")):
        prefix = values[key]
        if not prefix:
            continue
        if len(prefix + longest + suffix) > limit:
            check.problem(f"defaults.{key}", f"{show(prefix)} is too long: with a VM name of {names.IDENTITY_MAX} "
                                             f"characters the name it makes would be longer than {limit}")
        else:
            check.grammar(f"defaults.{key}", prefix, lambda p: check_name(p + longest + suffix), what)
    check.grammar("defaults.verify_alg", values["verify_alg"], names.check_crypto_name,
                  "a DRBD verify algorithm (a kernel hash name such as sha1, sha256, crc32c)")
    rate = parse_rate_kib(values["resync_rate"])
    if rate is None or not 1 <= rate <= MAX_RESYNC_RATE_KIB:
        check.problem("defaults.resync_rate", f"{show(values['resync_rate'])} is not a DRBD resync rate "
                                              "(a number with k, M or G: 100M; at most 4G)")
    snapshot = values["resync_snapshot"]
    if snapshot:
        size = parse_size(snapshot)
        if parse_percent(snapshot) is None and (size is None or size < MIN_DISK or size > MAX_DISK):
            check.problem("defaults.resync_snapshot", f"{show(snapshot)}: use a percentage (20%), "
                                                      "a size (2G, at least 4M) or \"\" for none")
        elif parse_percent(snapshot) is None:
            values["resync_snapshot"] = format_size(size)
    for name in ("xen_config_dir", "drbd_config_dir", "handler_dir"):
        check.grammar(f"defaults.{name}", values[name], names.check_absolute_path, "a usable directory")
    transport = values["migration_transport"]
    why = names.check_ascii_line(transport, limit=1024) or ("is empty" if not transport.strip() else None)
    if why:
        check.problem("defaults.migration_transport", f"{show(transport)} is not a command line: {why}")
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
        migration = check.value(entry, key, "migration_address", str, default=None)
        if name is not None:
            if not check.grammar(f"{key}.name", name, names.check_node_name, "a valid host name"):
                name = None
            elif name in seen_names:
                check.problem(f"{key}.name", f"duplicate node {show(name)} (also nodes[{seen_names[name]}])")
            else:
                seen_names[name] = index
        if replication is not None:
            replication, why = check_address(replication)
            if why:
                check.problem(f"{key}.replication_address",
                              f"{show(entry['replication_address'])} {why} (DRBD needs one)")
            elif replication in seen_addresses:
                check.problem(f"{key}.replication_address",
                              f"{replication} is also the address of nodes[{seen_addresses[replication]}]")
            else:
                seen_addresses[replication] = index
        if migration is not None:
            address, why = check_address(migration)
            if address:
                migration = address
            elif not check.grammar(f"{key}.migration_address", migration, names.check_hostname,
                                   "an IP address or a host name"):
                migration = None
        if name and replication:
            nodes.append(Node(name, replication, migration or name))
    if len(raw) < 2:
        check.problem("nodes", "at least two nodes are needed for replicated storage")
    return nodes


VM_KEYS = ("name", "memory", "vcpus", "kernel", "bootloader", "extra", "disk_size", "network", "replicas",
           "preferred_node", "drbd_resource", "drbd_minor", "drbd_port")


def _check_derived_names(check: _Checker, key: str, name: str, defaults: Defaults) -> None:
    """The LV and its resync snapshot are named after the VM: both must be LV names."""
    lv = f"{defaults.lv_prefix}{name}"
    for derived, what in ((lv, "LV name"), (lv + RESYNC_SNAPSHOT_SUFFIX, "resync snapshot name")):
        why = names.check_lv_name(derived)
        if why:
            check.problem(key, f"{show(name)} gives the {what} {show(derived)}, which {why}")
            return


def read_vms(check: _Checker, data: dict, defaults: Defaults, node_names, nodes: dict) -> list[Vm]:
    raw = data.get("vms", [])
    if not isinstance(raw, list):
        check.problem("vms", "must be an array of tables ([[vms]])")
        return []
    vms, seen, resources, minors, ports = [], {}, {}, {}, {}
    for index, entry in enumerate(raw):
        key = f"vms[{index}]"
        if not isinstance(entry, dict):
            check.problem(key, "must be a table")
            continue
        check.unknown_keys(entry, key, VM_KEYS)
        name = check.value(entry, key, "name", str, required=True)
        if name is not None:
            if not check.grammar(f"{key}.name", name, names.check_identity,
                                 f"valid for DRBD, LVM and Xen (letters, digits, _ and -, at most "
                                 f"{names.IDENTITY_MAX}, starting with a letter)"):
                name = None
            elif name in seen:
                check.problem(f"{key}.name", f"duplicate VM {show(name)} (also vms[{seen[name]}])")
            else:
                seen[name] = index
                _check_derived_names(check, f"{key}.name", name, defaults)
        memory = check.value(entry, key, "memory", int, required=True)
        if memory is not None and memory < 32:
            check.problem(f"{key}.memory", f"{memory} MiB is too small (at least 32)")
            memory = None
        elif not check.number(f"{key}.memory", memory, 32, MAX_MEMORY_MIB, "a memory size in MiB"):
            memory = None
        vcpus = check.value(entry, key, "vcpus", int, default=1)
        check.number(f"{key}.vcpus", vcpus, 1, 512, "a vCPU count")
        kernel = check.value(entry, key, "kernel", str, default="")
        bootloader = check.value(entry, key, "bootloader", str, default="")
        if bool(kernel) == bool(bootloader):
            check.problem(key, "needs exactly one of kernel or bootloader")
        if kernel:
            check.grammar(f"{key}.kernel", kernel, names.check_absolute_path, "a kernel path")
        if bootloader:
            check.grammar(f"{key}.bootloader", bootloader, names.check_command,
                          "a bootloader (pygrub, or an absolute path)")
        extra = check.value(entry, key, "extra", str, default="")
        why = names.check_ascii_line(extra, refused='"\\', limit=2048)
        if why:
            check.problem(f"{key}.extra", f"{show(extra)} cannot be written into an xl config: {why}")
        raw_size = entry.get("disk_size")
        disk_size = parse_size(raw_size)
        if raw_size is None:
            check.problem(f"{key}.disk_size", "is required")
        elif disk_size is None:
            check.problem(f"{key}.disk_size", f"{show(raw_size)} is not a size (e.g. 512M, 20G)")
        elif disk_size < MIN_DISK:
            check.problem(f"{key}.disk_size", f"{show(raw_size)} is too small (DRBD metadata needs room; at least 4M)")
            disk_size = None
        elif disk_size > MAX_DISK:
            check.problem(f"{key}.disk_size", f"{show(raw_size)} is larger than DRBD's largest device (1024T)")
            disk_size = None
        network = check.value(entry, key, "network", str, default="xenbr0")
        check.grammar(f"{key}.network", network, names.check_interface_name, "a bridge name")
        replicas = read_replicas(check, key, entry, node_names, nodes)
        preferred = check.value(entry, key, "preferred_node", str, default="")
        if preferred and preferred not in replicas:
            check.problem(f"{key}.preferred_node", f"{show(preferred)} is not one of its replicas "
                                                   f"({', '.join(replicas)})")
        resource = check.value(entry, key, "drbd_resource", str, default="")
        if resource:
            if not check.grammar(f"{key}.drbd_resource", resource, names.check_drbd_resource_name,
                                 "a valid DRBD resource name"):
                resource = ""
        elif name:
            resource = f"{defaults.drbd_resource_prefix}{name}"
            why = names.check_drbd_resource_name(resource)
            if why:
                check.problem(f"{key}.name", f"{show(name)} gives the DRBD resource name {show(resource)}, which {why}")
                resource = ""
        if resource:
            if resource in resources:
                check.problem(f"{key}.drbd_resource", f"duplicate DRBD resource {show(resource)} "
                                                      f"(also vms[{resources[resource]}])")
            resources[resource] = index
        minor = check.value(entry, key, "drbd_minor", int)
        if minor is not None:
            if check.number(f"{key}.drbd_minor", minor, 0, MAX_MINOR, "a DRBD minor") and minor in minors:
                check.problem(f"{key}.drbd_minor", f"duplicate minor {minor} (also vms[{minors[minor]}])")
            minors.setdefault(minor, index)
        port = check.value(entry, key, "drbd_port", int)
        if port is not None:
            if check.number(f"{key}.drbd_port", port, 1, MAX_PORT, "a port") and port in ports:
                check.problem(f"{key}.drbd_port", f"duplicate port {port} (also vms[{ports[port]}])")
            ports.setdefault(port, index)
        if name and memory is not None and disk_size and resource:
            vms.append(Vm(name, memory, vcpus or 1, kernel or "", bootloader or "", extra or "", disk_size,
                          network, tuple(replicas), preferred, resource, minor, port))
    return vms


def read_replicas(check: _Checker, key: str, entry: dict, node_names, nodes: dict) -> list:
    replicas = entry.get("replicas", node_names[:2] if len(node_names) == 2 else None)
    if replicas is None:
        check.problem(f"{key}.replicas", "is required when the cluster has more than two nodes")
        return []
    if not isinstance(replicas, list) or not all(isinstance(r, str) for r in replicas):
        check.problem(f"{key}.replicas", "must be a list of node names")
        return []
    for replica in replicas:
        if replica not in node_names:
            check.problem(f"{key}.replicas", f"unknown node {show(replica)} (nodes: {', '.join(node_names)})")
    if len(set(replicas)) != len(replicas):
        check.problem(f"{key}.replicas", "names a node twice")
    if replicas and len(replicas) != 2:
        check.problem(f"{key}.replicas", f"{len(replicas)} replicas: live migration needs DRBD dual-primary, "
                                         "which allows exactly two")
    families = {nodes[r].replication_family for r in replicas if r in nodes}
    if len(families) > 1:
        check.problem(f"{key}.replicas", "the replicas' replication addresses are of different families "
                                         "(IPv4 and IPv6): DRBD connects one address to the other")
    return replicas
