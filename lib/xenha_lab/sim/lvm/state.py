"""The device-mapper state of one simulated node: which LVs are active, through which
real block device, and who holds them open.

Real LVM activation creates device-mapper devices; this machine has no device-mapper,
so an active LV is a loop device over its PV at the right offset (see
`xenha_lab.sim.lvm.devmapper`). What the kernel would remember about those devices lives
here, on the node's volatile state directory (tmpfs /run in the lab: a fenced node
forgets its activations the way real hardware does).

Layout of `XENHA_SIM_LVM_STATE` (default /run/xenha-sim/lvm):

    lock               flock(2) held by every change
    dev/<dm uuid>      one record per mapped device (key=value lines, see DEVICE_KEYS)

Who holds a device open comes from the node's block-device holders registry
(`xenha_lab.sim.holders`, env XENHA_SIM_HOLDERS), which the DRBD simulator writes.

This module is imported by `dmsetup` on every monitor call: standard library `os` only.
"""

import os

from xenha_lab.sim import holders as holders_registry

DEFAULT_ROOT = "/run/xenha-sim/lvm"
ENV_ROOT = "XENHA_SIM_LVM_STATE"
ENV_DEV_ROOT = "XENHA_SIM_DEV_ROOT"      # where /dev/<vg>/<lv> and /dev/mapper live

# A device record. Values never contain newlines.
DEVICE_KEYS = (
    "name",        # dm name, e.g. vg0-vm_shaolin (dashes in VG/LV names doubled)
    "uuid",        # LVM-<vg uuid><lv uuid>, dashes removed
    "vg", "lv", "layer", "vg_uuid", "lv_uuid",
    "kind",        # linear | snapshot (the snapshot's own device)
    "dev",         # /dev/loopN: the real block device behind it
    "major", "minor",
    "sectors",     # size in 512-byte sectors
    "table",       # the dm table line ("0 131072 linear 7:1 2048")
    "ro",          # 1 when activated read-only
    "mode",        # the activation request: y ey sy ay ly
    "links",       # comma-separated paths created for it (/dev/vg/lv, /dev/mapper/vg-lv)
    "origin_uuid", # for kind=snapshot: the origin's lv uuid
    "snapfile",    # for kind=snapshot: the file holding the snapshot's data
    "cow_sectors", # for kind=snapshot: size of the COW store (the snapshot LV)
    "chunk",       # for kind=snapshot: chunk size in sectors
    "events",
)

def root_from_env(environ=None):
    environ = os.environ if environ is None else environ
    return environ.get(ENV_ROOT) or DEFAULT_ROOT


def dev_root_from_env(environ=None):
    environ = os.environ if environ is None else environ
    return (environ.get(ENV_DEV_ROOT) or "/dev").rstrip("/") or "/"


def dm_mangle(name):
    """LVM's dm name component: every '-' doubled (libdm dm_build_dm_name)."""
    return name.replace("-", "--")


def dm_name(vg, lv, layer=""):
    name = dm_mangle(vg) + "-" + dm_mangle(lv)
    return name + "-" + layer if layer else name


def dm_uuid(vg_uuid, lv_uuid, layer=""):
    uuid = "LVM-" + vg_uuid.replace("-", "") + lv_uuid.replace("-", "")
    return uuid + "-" + layer if layer else uuid


def split_dm_name(name):
    """(vg, lv, layer) from a dm name, undoing the dash doubling (dm_split_lvm_name)."""
    parts, cur, i = [], [], 0
    while i < len(name):
        ch = name[i]
        if ch == "-":
            if i + 1 < len(name) and name[i + 1] == "-":
                cur.append("-")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    parts.append("".join(cur))
    vg = parts[0] if parts else ""
    lv = parts[1] if len(parts) > 1 else ""
    layer = "-".join(parts[2:]) if len(parts) > 2 else ""
    return vg, lv, layer


def read_kv(path):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    record = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            record[key] = value
    return record


def write_atomic(path, text):
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


class NodeState:
    """The mapped devices of one node (a directory)."""

    def __init__(self, root=None, holders=None, dev_root=None):
        self.root = root or root_from_env()
        self.holders_dir = holders or holders_registry.registry_dir()
        self.dev_root = dev_root or dev_root_from_env()
        self.dev_dir = os.path.join(self.root, "dev")
        self._lock_fd = None

    # --- locking (only writers lock; readers see atomic renames) -------------------
    def lock(self):
        import fcntl

        os.makedirs(self.dev_dir, exist_ok=True)
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd
        return self

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self.lock()

    def __exit__(self, *exc):
        self.unlock()

    # --- records -------------------------------------------------------------------
    def devices(self):
        """All device records, sorted by dm name (the kernel lists them that way)."""
        try:
            names = os.listdir(self.dev_dir)
        except OSError:
            return []
        records = []
        for entry in names:
            if ".tmp" in entry:
                continue
            record = read_kv(os.path.join(self.dev_dir, entry))
            if record:
                records.append(record)
        records.sort(key=lambda r: r.get("name", ""))
        return records

    def get(self, uuid):
        return read_kv(os.path.join(self.dev_dir, uuid))

    def by_lv_uuid(self, lv_uuid):
        for record in self.devices():
            if record.get("lv_uuid") == lv_uuid and not record.get("layer"):
                return record
        return None

    def by_name(self, name):
        for record in self.devices():
            if record.get("name") == name:
                return record
        return None

    def put(self, record):
        os.makedirs(self.dev_dir, exist_ok=True)
        text = "".join("%s=%s\n" % (key, record[key]) for key in DEVICE_KEYS if key in record)
        write_atomic(os.path.join(self.dev_dir, record["uuid"]), text)

    def drop(self, uuid):
        try:
            os.unlink(os.path.join(self.dev_dir, uuid))
        except OSError:
            pass

    # --- holders -------------------------------------------------------------------
    def holders(self):
        """[(path, holder name)] from the registry."""
        return holders_registry.listing(self.holders_dir)

    def holders_of(self, record, registry=None):
        """Holder names of a mapped device: registry entries whose path is the device
        (same device number when the path exists, else the same path string)."""
        registry = self.holders() if registry is None else registry
        if not registry:
            return []
        try:
            rdev = (int(record.get("major", "-1")), int(record.get("minor", "-1")))
        except ValueError:
            rdev = (-1, -1)
        paths = set(filter(None, record.get("links", "").split(",")))
        paths.add(record.get("dev", ""))
        found = []
        for path, holder in registry:
            try:
                st = os.stat(path)
                if st.st_rdev and (os.major(st.st_rdev), os.minor(st.st_rdev)) == rdev:
                    found.append(holder)
                    continue
            except OSError:
                pass
            if path in paths:
                found.append(holder)
        return found

    def open_count(self, record, registry=None):
        return len(self.holders_of(record, registry))

