"""What the nodes themselves say, read without running anything on them: the domains
of each node's simulated hypervisor, its simulated DRBD kernel's resources, and the
guests' logs of acknowledged writes. Cheap enough to sample several times a second
(files read through the backend; nothing spawned), so the invariants come from here and
not from Pacemaker's view of the cluster.

The records are the simulators' own (xenha_lab.sim.xen.state, xenha_lab.sim.drbd.records
in the node's RAM: /run/xenha-sim/...); a backend with real kernels would read /sys and
`xl list` instead.
"""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field

from xenha_lab.sim import guest_io
from xenha_lab.sim.drbd.records import Resource
from xenha_lab.sim.xen.protocol import INCOMING, MIGRATEDAWAY

XL_DOMAINS = "/run/xenha-sim/xl/domains"
DRBD_RESOURCES = "/run/xenha-sim/drbd/resources"


@dataclass(frozen=True)
class Domain:
    node: str
    domid: int
    name: str
    status: str            # the hypervisor's record: live, suspended, dying, shutdown:...
    alive: bool            # its guest process exists
    paused: bool           # ... and is stopped (paused, or suspended for a migration)

    @property
    def guest(self) -> str:
        """The guest's name without xl's migration suffixes."""
        return self.name.removesuffix(INCOMING).removesuffix(MIGRATEDAWAY)

    @property
    def running(self) -> bool:
        """Executing the guest: alive, not paused, not being torn down."""
        return self.alive and not self.paused and self.status == "live"


@dataclass(frozen=True)
class Drbd:
    node: str
    resource: str
    role: str
    disks: tuple
    connections: dict = field(default_factory=dict)    # peer name -> connection state
    peer_disks: dict = field(default_factory=dict)     # peer name -> its disk state (volume 0)
    replication: dict = field(default_factory=dict)    # peer name -> replication state (volume 0)
    suspended: bool = False

    @property
    def disk(self) -> str:
        return self.disks[0] if self.disks else "Diskless"

    def connection_text(self) -> str:
        return ", ".join(f"{peer} {state}" + (f"/{self.replication[peer]}" if self.replication.get(peer, "Off")
                                                   not in ("Off", "Established") else "")
                         for peer, state in sorted(self.connections.items())) or "-"


def _kv(data: bytes) -> dict:
    record = {}
    for line in data.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            record[key.strip()] = value
    return record


def _guest_process(lab, node: str, record: dict) -> tuple[bool, bool]:
    """(alive, stopped) of a domain's guest process, read from the node's own /proc."""
    pid = record.get("pid")
    if not pid or not pid.isdigit():
        return False, False
    stat = lab.read_file(node, f"/proc/{pid}/stat")
    if not stat:
        return False, False
    fields = stat[stat.rindex(b")") + 2:].split()
    if record.get("pid_start") and fields[19].decode() != record["pid_start"]:
        return False, False
    state = fields[0].decode()
    if state in ("Z", "X"):
        return False, False
    return True, state in ("T", "t")


def domains(lab, node: str) -> list[Domain]:
    """The domains the node's hypervisor has ([] when the node is off)."""
    found = []
    for name in lab.list_dir(node, XL_DOMAINS) or ():
        if not name.isdigit():
            continue
        data = lab.read_file(node, f"{XL_DOMAINS}/{name}")
        if not data:
            continue
        record = _kv(data)
        alive, stopped = _guest_process(lab, node, record)
        found.append(Domain(node, int(name), record.get("name", ""), record.get("status", "live"), alive,
                            stopped or record.get("status") == "suspended"))
    return sorted(found, key=lambda d: d.domid)


def drbd(lab, node: str, resource: str) -> Drbd | None:
    """The resource as the node's DRBD kernel has it (None: not configured, or off)."""
    data = lab.read_file(node, f"{DRBD_RESOURCES}/{resource}")
    if not data:
        return None
    try:
        res = Resource.load(marshal.loads(data))
    except (EOFError, ValueError, TypeError, KeyError):
        return None
    names = {pid: conn.name or str(pid) for pid, conn in res.conns.items()}
    first = min(res.devices) if res.devices else None
    return Drbd(node, resource, res.role, tuple(res.devices[v].disk for v in sorted(res.devices)),
                {names[pid]: conn.cstate for pid, conn in res.conns.items()},
                {names[pid]: conn.pd[first].pdisk for pid, conn in res.conns.items() if first in conn.pd},
                {names[pid]: conn.pd[first].repl for pid, conn in res.conns.items() if first in conn.pd},
                res.suspended)


# --- the guests' writes ---------------------------------------------------------------------------------------

def acknowledged(lab, vm: str) -> list:
    """The guest's acknowledged writes (guest_io.Ack), oldest first."""
    if not lab.guest_log_dir:
        return []
    return guest_io.read_log(lab.guest_log_dir, vm)


@dataclass(frozen=True)
class WriteCheck:
    acknowledged: int
    missing: tuple          # acknowledged writes the disk of `node` lacks
    lost_across_boots: tuple
    duplicates: tuple       # the same write acknowledged by two copies of one boot
    node: str

    @property
    def ok(self) -> bool:
        return not (self.missing or self.lost_across_boots or self.duplicates)

    def describe(self) -> str:
        parts = [f"{self.acknowledged} acknowledged writes"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing on {self.node}'s disk (first: seq {self.missing[0].seq})")
        if self.lost_across_boots:
            parts.append(f"{len(self.lost_across_boots)} lost across boots (first: seq "
                         f"{self.lost_across_boots[0].seq})")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} acknowledged by two copies at once")
        return "; ".join(parts)


def check_writes(lab, vm: str, node: str, backing: str) -> WriteCheck:
    """Every acknowledged write of `vm` is on the disk of `node` (where it runs now),
    none was lost across a restart, no two copies wrote at once."""
    acks = acknowledged(lab, vm)
    blocks = lab.disk_blocks(node, backing)
    return WriteCheck(len(acks), tuple(guest_io.missing_writes(acks, blocks)),
                      tuple(guest_io.lost_across_boots(acks)), tuple(guest_io.duplicates(acks)), node)
