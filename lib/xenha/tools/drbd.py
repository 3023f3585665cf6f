"""DRBD state as the user-space tools report it, parsed into typed values.

DRBD 9: `drbdsetup events2 --now RES` (one line per object: resource, device,
connection, peer-device, path; `exists -` ends the dump) is what monitors read: text,
one call, no JSON import. `events2` streams (create/change/destroy lines) replay onto
the same model. `drbdsetup status --json` is parsed too (operators, handlers).
DRBD 8.4: `/proc/drbd` (one line per minor: cs ro ds) and drbdadm's role/cstate/dstate.

Exit codes of drbdsetup/drbdadm state changes (tools.md §2): 10 object/config error,
11 generic state change failure, 17 "Need access to UpToDate data", 16 no local disk for
resync, 5 disk state lower than outdated, 20 module problem.
"""

from xenha.tools import runner

RC_NO_OBJECT = 10
RC_STATE_CHANGE = 11
RC_NEED_UP_TO_DATE = 17
RC_MODULE = 20

RESYNC_STATES = ("SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT", "StartingSyncS", "StartingSyncT",
                 "WFBitMapS", "WFBitMapT", "WFSyncUUID")


class DrbdError(Exception):
    def __init__(self, message: str, result: runner.CommandResult | None = None):
        super().__init__(message)
        self.result = result


class Device:
    __slots__ = ("volume", "minor", "disk", "backing_dev", "client", "open", "quorum")

    def __init__(self):
        self.volume = self.minor = None
        self.disk = "DUnknown"
        self.backing_dev = ""
        self.client = False
        self.open = None
        self.quorum = True


class PeerDevice:
    __slots__ = ("peer_node_id", "volume", "replication", "peer_disk", "done", "resync_suspended")

    def __init__(self):
        self.peer_node_id = self.volume = None
        self.replication = "Off"
        self.peer_disk = "DUnknown"
        self.done = None
        self.resync_suspended = "no"

    @property
    def resyncing(self) -> bool:
        return self.replication in RESYNC_STATES


class Connection:
    __slots__ = ("peer_node_id", "name", "state", "peer_role")

    def __init__(self):
        self.peer_node_id = None
        self.name = ""
        self.state = "StandAlone"
        self.peer_role = "Unknown"

    @property
    def connected(self) -> bool:
        return self.state == "Connected"


class ResourceState:
    """One DRBD resource on this node: role, devices, connections, peer devices."""

    def __init__(self, name: str):
        self.name = name
        self.role = "Unknown"
        self.suspended = "no"
        self.may_promote = None
        self.promotion_score = None
        self.devices = {}          # volume -> Device
        self.connections = {}      # peer node id -> Connection
        self.peer_devices = {}     # (peer node id, volume) -> PeerDevice

    @property
    def primary(self) -> bool:
        return self.role == "Primary"

    @property
    def suspended_io(self) -> bool:
        return self.suspended not in ("no", "", "false", "False")

    def disks(self) -> list[str]:
        return [self.devices[v].disk for v in sorted(self.devices)]

    def all_local_up_to_date(self) -> bool:
        return bool(self.devices) and all(d.disk == "UpToDate" for d in self.devices.values())

    def peers_of(self, node_id) -> list[PeerDevice]:
        return [p for (peer, _vol), p in sorted(self.peer_devices.items()) if peer == node_id]


def _fields(words):
    fields = {}
    for word in words:
        key, sep, value = word.partition(":")
        if sep:
            fields[key] = value
    return fields


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def parse_events2(text: str) -> dict:
    """{resource name: ResourceState} from `events2` output (`--now` or a stream).

    Lines are `<verb> <object> name:R key:value...`; `exists`/`create`/`change` set
    values, `destroy` removes the object, `call`/`response` (helpers) and `exists -` are
    skipped. `--diff` values (`old->new`) keep the new value; `--timestamps` prefixes are
    tolerated. Raises DrbdError on a line that is not events2 syntax.
    """
    resources = {}
    for line in text.splitlines():
        words = line.split()
        if words and "T" in words[0] and words[0][:4].isdigit():
            words = words[1:]  # --timestamps
        if not words or words == ["exists", "-"]:
            continue
        if len(words) < 3:
            raise DrbdError(f"unreadable events2 line: {line!r}")
        verb, kind = words[0], words[1]
        if verb not in ("exists", "create", "change", "destroy", "call", "response", "rename"):
            raise DrbdError(f"unreadable events2 line: {line!r}")
        if verb in ("call", "response", "rename"):
            continue
        fields = {k: v.split("->")[-1] for k, v in _fields(words[2:]).items()}
        name = fields.get("name")
        if name is None:
            raise DrbdError(f"events2 line without a name: {line!r}")
        if kind == "resource":
            if verb == "destroy":
                resources.pop(name, None)
                continue
            state = resources.setdefault(name, ResourceState(name))
            state.role = fields.get("role", state.role)
            state.suspended = fields.get("suspended", state.suspended)
            if "may_promote" in fields:
                state.may_promote = fields["may_promote"] == "yes"
            if "promotion_score" in fields:
                state.promotion_score = _int(fields["promotion_score"])
            continue
        state = resources.setdefault(name, ResourceState(name))
        if kind == "device":
            volume = _int(fields.get("volume"))
            if verb == "destroy":
                state.devices.pop(volume, None)
                continue
            device = state.devices.setdefault(volume, Device())
            device.volume = volume
            device.minor = _int(fields.get("minor", device.minor))
            device.disk = fields.get("disk", device.disk)
            device.backing_dev = fields.get("backing_dev", device.backing_dev)
            device.client = fields.get("client", "no") == "yes"
            if "open" in fields:
                device.open = fields["open"] == "yes"
            if "quorum" in fields:
                device.quorum = fields["quorum"] == "yes"
        elif kind == "connection":
            peer = _int(fields.get("peer-node-id"))
            if verb == "destroy":
                state.connections.pop(peer, None)
                continue
            connection = state.connections.setdefault(peer, Connection())
            connection.peer_node_id = peer
            connection.name = fields.get("conn-name", connection.name)
            connection.state = fields.get("connection", connection.state)
            connection.peer_role = fields.get("role", connection.peer_role)
        elif kind == "peer-device":
            key = (_int(fields.get("peer-node-id")), _int(fields.get("volume")))
            if verb == "destroy":
                state.peer_devices.pop(key, None)
                continue
            peer_device = state.peer_devices.setdefault(key, PeerDevice())
            peer_device.peer_node_id, peer_device.volume = key
            peer_device.replication = fields.get("replication", peer_device.replication)
            peer_device.peer_disk = fields.get("peer-disk", peer_device.peer_disk)
            peer_device.resync_suspended = fields.get("resync-suspended", peer_device.resync_suspended)
            done = fields.get("done")
            peer_device.done = float(done) if done else (None if not peer_device.resyncing else peer_device.done)
        elif kind == "path":
            continue
        else:
            raise DrbdError(f"unknown events2 object {kind!r}: {line!r}")
    return resources


def parse_status_json(text: str) -> dict:
    """{resource name: ResourceState} from `drbdsetup status --json` (tolerant of the
    fields older drbd-utils omit)."""
    import json

    try:
        document = json.loads(text)
    except ValueError as bad:
        raise DrbdError(f"unreadable drbdsetup status --json: {bad}") from None
    resources = {}
    for entry in document:
        state = ResourceState(entry.get("name", ""))
        state.role = entry.get("role", "Unknown")
        state.suspended = "yes" if entry.get("suspended") else "no"
        for raw in entry.get("devices", []):
            device = Device()
            device.volume, device.minor = raw.get("volume"), raw.get("minor")
            device.disk = raw.get("disk-state", "DUnknown")
            device.client = bool(raw.get("client", False))
            device.open = raw.get("open")
            device.quorum = bool(raw.get("quorum", True))
            state.devices[device.volume] = device
        for raw in entry.get("connections", []):
            connection = Connection()
            connection.peer_node_id = raw.get("peer-node-id")
            connection.name = raw.get("name", "")
            connection.state = raw.get("connection-state", "StandAlone")
            connection.peer_role = raw.get("peer-role", "Unknown")
            state.connections[connection.peer_node_id] = connection
            for peer_raw in raw.get("peer_devices", []):
                peer = PeerDevice()
                peer.peer_node_id, peer.volume = connection.peer_node_id, peer_raw.get("volume")
                peer.replication = peer_raw.get("replication-state", "Off")
                peer.peer_disk = peer_raw.get("peer-disk-state", "DUnknown")
                peer.done = peer_raw.get("percent-resync-done")
                peer.resync_suspended = str(peer_raw.get("resync-suspended", "no"))
                state.peer_devices[(peer.peer_node_id, peer.volume)] = peer
        resources[state.name] = state
    return resources


def parse_proc_drbd(text: str) -> dict:
    """{minor: ResourceState} from DRBD 8.4's /proc/drbd (resource names are not in it).
    An unconfigured minor is left out. DRBD 9's /proc/drbd lists no minors: {}."""
    states = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        head, sep, rest = stripped.partition(":")
        if sep and head.isdigit() and line.startswith(" "):
            fields = _fields(rest.split())
            if fields.get("cs") == "Unconfigured" or "ro" not in fields:
                current = None
                continue
            minor = int(head)
            state = ResourceState(f"minor-{minor}")
            local_role, _slash, peer_role = fields["ro"].partition("/")
            local_disk, _slash, peer_disk = fields.get("ds", "DUnknown/DUnknown").partition("/")
            state.role = local_role
            device = Device()
            device.volume, device.minor, device.disk = 0, minor, local_disk
            state.devices[0] = device
            connection = Connection()
            connection.peer_node_id, connection.peer_role = 1, peer_role
            cstate = fields.get("cs", "StandAlone")
            # 8.4 folds replication into the connection state.
            connection.state = "Connected" if cstate in RESYNC_STATES or cstate == "Connected" else (
                "Connecting" if cstate == "WFConnection" else cstate)
            state.connections[1] = connection
            peer = PeerDevice()
            peer.peer_node_id, peer.volume, peer.peer_disk = 1, 0, peer_disk
            peer.replication = cstate if cstate in RESYNC_STATES else (
                "Established" if cstate == "Connected" else "Off")
            state.peer_devices[(1, 0)] = peer
            states[minor] = state
            current = state
        elif current is not None and "sync'ed:" in stripped:
            percent = stripped.split("sync'ed:", 1)[1].split("%", 1)[0].strip()
            try:
                current.peer_devices[(1, 0)].done = float(percent)
            except ValueError:
                pass
    return states


def state_change_failure(result: runner.CommandResult) -> str:
    """drbdsetup's own words for a failed state change (last stderr line)."""
    return runner.last_line(result.stderr) or result.describe()
