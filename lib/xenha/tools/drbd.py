"""DRBD through its user-space tools: the `Drbd` driver, and the typed state it returns.

The driver owns every drbdadm/drbdsetup call an agent or handler makes (argv, timeout,
parsing, typed failures) and reads a resource's state through one of two backends that
return the same `ResourceState`:

- DRBD 9 (`state_from_events2`): `drbdsetup events2 --now RES` (one line per object: resource,
  device, connection, peer-device, path; `exists -` ends the dump) — text, one call, no
  JSON import. `events2` streams (create/change/destroy lines) replay onto the same
  model. (`xenha status` reads `drbdsetup status --json` itself: xenha.operate.state.)
- DRBD 8.4 (`state_from_drbdadm_84`): drbdadm's role/cstate/dstate (`Primary/Secondary`,
  `Connected`, `UpToDate/UpToDate`), mapped onto DRBD 9's model by `state_84`, the one
  place that knows how 8.4's connection states fold replication in. `/proc/drbd` of 8.4
  (one line per minor: cs ro ds) goes through the same mapping.

Which backend: `Drbd.detect_version()` (drbd-utils' own override, then /proc/drbd, then
`drbdsetup --version`), unless the caller knows it.

Exit codes of drbdsetup/drbdadm state changes (tools.md §2): 10 object/config error,
11 generic state change failure, 17 "Need access to UpToDate data", 16 no local disk for
resync, 5 disk state lower than outdated, 20 module problem.
"""

from xenha.tools import runner
from xenha.tools.tool import Tool

RC_NO_OBJECT = 10
RC_STATE_CHANGE = 11
RC_NEED_UP_TO_DATE = 17
RC_MODULE = 20
# DRBD's state-change refusals that no retry within one operation can change (a
# DrbdRefused), by their drbd_state_rv number (samples/drbd_13_state_change_error_strings.txt):
# the configuration (-1 "Multiple primaries not allowed by config", -20 "Other vol primary
# on peer not allowed by config"), the data (-2 "Need access to UpToDate data", -11
# "Device is diskless", -16 "Disk state is lower than outdated") and the peer's software
# (-17 "Peer does not support protocol"). The others (a peer not outdated yet, a device
# still open, a transient or concurrent state change, a timeout, no quorum yet) may
# change within seconds: callers retry those until their deadline.
FINAL_STATE_CHANGES = (-1, -2, -11, -16, -17, -20)
FINAL_CODES = (RC_NEED_UP_TO_DATE,)      # drbdsetup's exit code for -2

# How long one call may take at most (callers pass less when their deadline is nearer).
QUERY_TIMEOUT = 15.0
CHANGE_TIMEOUT = 60.0
# `drbdsetup --version` asked only to tell why another tool is missing: a short answer.
SIGN_TIMEOUT = 5.0

RESYNC_STATES = ("SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT", "StartingSyncS", "StartingSyncT",
                 "WFBitMapS", "WFBitMapT", "WFSyncUUID")
# DRBD 8.4 connection states that DRBD 9 splits into connection Connected + this
# replication state (8.4's `Connected` is 9's `Established`).
CONNECTED_84 = RESYNC_STATES + ("VerifyS", "VerifyT", "Ahead", "Behind")
# 8.4's "waiting for the peer" and handshake states: DRBD 9 calls both Connecting.
CONNECTING_84 = ("WFConnection", "WFReportParams")
# drbdadm's line around a failed drbdsetup: "Command 'drbdsetup primary r0' terminated with exit code 11"
WRAPPER_START, WRAPPER_MIDDLE = "Command '", "' terminated with exit code "
STATE_CHANGE_FAILED = "State change failed: ("
FAILURE = ": Failure: ("
KERNEL_INFO = "additional info from kernel:"


class DrbdError(Exception):
    """drbdadm/drbdsetup failed, or printed something unreadable: the truth is unknown.

    For a failed command, str() is DRBD's own explanation (what exit reasons show), e.g.
    "r0: State change failed: (-1) Multiple primaries not allowed by config", never
    drbdadm's "Command '...' terminated with exit code N" wrapper line; `result` keeps
    everything the command printed.
    """

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # the finished command (runner.CommandResult); None: unreadable output

    @property
    def returncode(self) -> int | None:
        return None if self.result is None else self.result.returncode

    @property
    def drbd_said(self) -> str:
        if self.result is None:
            return str(self)
        return drbd_words(self.result.stderr) or self.result.describe()


class DrbdRefused(DrbdError):
    """A refusal that no retry can change (see FINAL_STATE_CHANGES): callers stop at once."""


def is_wrapper(line: str) -> bool:
    return line.startswith(WRAPPER_START) and WRAPPER_MIDDLE in line


def state_change_number(text: str) -> int | None:
    """N of the first "State change failed: (N) ..." line DRBD printed, None if none."""
    at = text.find(STATE_CHANGE_FAILED)
    if at < 0:
        return None
    number, _paren, _rest = text[at + len(STATE_CHANGE_FAILED):].partition(")")
    try:
        return int(number)
    except ValueError:
        return None


def is_final(result: runner.CommandResult, via_drbdadm: bool = False) -> bool:
    """Whether a failed command was refused for a reason no retry can change: one of
    FINAL_STATE_CHANGES, or drbdadm refusing on its own (no drbdsetup wrapper line: its
    configuration does not parse or does not define the resource for this host)."""
    if result.timed_out or result.returncode <= 0:
        return False
    if result.returncode in FINAL_CODES or state_change_number(result.stderr) in FINAL_STATE_CHANGES:
        return True
    return via_drbdadm and not any(is_wrapper(line.strip()) for line in result.stderr.splitlines())


def command_failed(result: runner.CommandResult, via_drbdadm: bool = False) -> DrbdError:
    """The typed failure of a finished command (refusals no retry can change apart),
    worded with DRBD's own explanation."""
    kind = DrbdRefused if is_final(result, via_drbdadm) else DrbdError
    words = result.describe() if result.timed_out else drbd_words(result.stderr) or result.describe()
    return kind(words, result)


def drbd_words(text: str) -> str:
    """DRBD's own explanation on a failed command's stderr: its first "State change
    failed: (N)" or "Failure: (N)" line (with what the kernel added), else the last line
    that is not drbdadm's wrapper."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if STATE_CHANGE_FAILED in line or FAILURE in line:
            extra = []
            if index + 1 < len(lines) and lines[index + 1] == KERNEL_INFO:
                extra = [x for x in lines[index + 2:] if not is_wrapper(x) and FAILURE not in x]
            return line + (f" ({' '.join(extra)})" if extra else "")
    for line in reversed(lines):
        if not is_wrapper(line):
            return line
    return ""


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


def connection_84(cstate: str) -> tuple[str, str]:
    """DRBD 9's (connection state, replication state) for a DRBD 8.4 connection state.

    8.4 folds replication into the connection state; DRBD 9 splits it off and renamed
    the waiting states (WFConnection, WFReportParams) Connecting. The other names
    (StandAlone, Unconnected, Disconnecting, Timeout, BrokenPipe, NetworkFailure,
    ProtocolError, TearDown) mean the same in both and pass through: 8.4's Unconnected
    is the short state before a connection attempt, and DRBD 9 keeps it under that name.
    """
    if cstate == "Connected":
        return "Connected", "Established"
    if cstate in CONNECTED_84:
        return "Connected", cstate
    if cstate in CONNECTING_84:
        return "Connecting", "Off"
    return cstate, "Off"


def state_84(name: str, roles: str, cstate: str, disks: str, minor: int | None = None) -> ResourceState:
    """The state of a DRBD 8.4 resource (one volume, one peer) from the words 8.4 prints:
    roles `Local/Peer`, a connection state, disk states `Local/Peer` (drbdadm's role,
    cstate and dstate answers, or /proc/drbd's ro, cs and ds fields)."""
    local_role, _slash, peer_role = roles.partition("/")
    local_disk, _slash, peer_disk = disks.partition("/")
    state = ResourceState(name)
    state.role = local_role
    device = Device()
    device.volume, device.minor, device.disk = 0, minor, local_disk
    state.devices[0] = device
    connection = Connection()
    connection.peer_node_id, connection.name, connection.peer_role = 1, "peer", peer_role or "Unknown"
    connection.state, replication = connection_84(cstate)
    state.connections[1] = connection
    peer = PeerDevice()
    peer.peer_node_id, peer.volume, peer.peer_disk = 1, 0, peer_disk or "DUnknown"
    peer.replication = replication
    state.peer_devices[(1, 0)] = peer
    return state


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
            current = state_84(f"minor-{minor}", fields["ro"], fields.get("cs", "StandAlone"),
                               fields.get("ds", "DUnknown/DUnknown"), minor)
            states[minor] = current
        elif current is not None and "sync'ed:" in stripped:
            percent = stripped.split("sync'ed:", 1)[1].split("%", 1)[0].strip()
            try:
                current.peer_devices[(1, 0)].done = float(percent)
            except ValueError:
                pass
    return states


def allows_two_primaries(dump: str) -> bool:
    """Whether a resource's configuration (`drbdadm dump RES`) lets both nodes be Primary."""
    return "allow-two-primaries yes" in " ".join(dump.split())


# The two backends: how each DRBD version's tools tell a resource's state, as the same
# ResourceState (None: not configured here, certain). Functions, not classes: one of
# them runs on every monitor, and every class costs import time.
def state_from_events2(driver, timeout: float) -> ResourceState | None:
    """DRBD 9: `drbdsetup events2 --now RES`."""
    resource = driver.resource
    result = driver.drbdsetup.run(["events2", "--now", resource], min(timeout, QUERY_TIMEOUT))
    if not_configured(result):
        return None
    if not result.ok:
        raise DrbdError(f"cannot read the state of {resource}: {result.describe()}", result)
    return parse_events2(result.stdout).get(resource)


# The 8.4 kernel's answer for a minor it does not have (drbd-utils 9.22 with the 8.4.11
# module, tests/sim/real_samples/drbd84_kernel.txt): drbdsetup-84 exits 10 with it; `dstate`
# of an unconfigured resource goes to drbdmeta, which exits 20 when it meets it.
MINOR_NOT_ALLOCATED = "(127) Device minor not allocated"


def state_from_drbdadm_84(driver, timeout: float) -> ResourceState | None:
    """DRBD 8.4: `drbdadm role`, `cstate` and `dstate` (one call each), through state_84.
    A resource taken down between two of the calls is not configured: the kernel said so."""
    resource = driver.resource
    answers = []
    for query in ("role", "cstate", "dstate"):
        result = driver.adm([query, resource], min(timeout, QUERY_TIMEOUT))
        text = result.stdout.strip()
        if result.returncode == RC_NO_OBJECT or text == "Unconfigured" or "Unconfigured" in result.stderr \
                or (MINOR_NOT_ALLOCATED in result.stderr and not result.timed_out):
            return None
        if not result.ok or not text:
            raise DrbdError(f"cannot read the state of {resource}: {result.describe()}", result)
        answers.append(text.splitlines()[0].strip())
    return state_84(resource, *answers)


BACKENDS = {"9": state_from_events2, "8.4": state_from_drbdadm_84}


def not_configured(result: runner.CommandResult) -> bool:
    """drbdsetup's certain "this resource is not configured here" (exit 10, No such resource)."""
    return result.returncode == RC_NO_OBJECT and "No such resource" in result.stderr and not result.timed_out


class Drbd:
    """drbdadm and drbdsetup for one resource: every call a method with its own timeout
    (at most QUERY_TIMEOUT or CHANGE_TIMEOUT, less when the caller's `timeout` is
    shorter), every failure a DrbdError (DrbdRefused: do not retry).

    `version` ("9" or "8.4", a key of BACKENDS) picks the backend that reads the
    state; anything else: detected on the first `state()` (or call `detect_version()`
    first to know whether a module is loaded at all). `conf` None lets drbdadm use its
    default configuration.
    """

    def __init__(self, resource: str, conf: str | None = None, drbdadm: str = "drbdadm", env=None,
                 version: str | None = None):
        self.resource = resource
        self.conf = conf
        self.env = env
        self.drbdadm = Tool(drbdadm, env)
        self.drbdsetup = Tool("drbdsetup", env)
        self.version = version if version in BACKENDS else None

    def binaries(self) -> tuple:
        return (self.drbdadm, self.drbdsetup)

    # --- which DRBD -----------------------------------------------------------------------
    def detect_version(self, timeout: float) -> str | None:
        """"9", "8.4", or None when no DRBD module is loaded (or drbdsetup is missing);
        the backend follows. drbd-utils' own override (DRBD_DRIVER_VERSION_OVERRIDE)
        wins, then /proc/drbd, then `drbdsetup --version`."""
        self.version = self._module_version(timeout)
        return self.version

    def _module_version(self, timeout: float) -> str | None:
        if self.env is not None:
            override = self.env.get("DRBD_DRIVER_VERSION_OVERRIDE", "")
        else:  # this process's environment (`os` costs an import here)
            import posix
            override = posix.environ.get(b"DRBD_DRIVER_VERSION_OVERRIDE", b"").decode("utf-8", "replace")
        if override:
            return "8.4" if override.startswith("8.") else "9"
        from xenha.tools.host import Host

        first = Host(self.env).read_small("/proc/drbd", 1 << 20).partition("\n")[0]
        if first.startswith("version: 8."):
            return "8.4"
        if first.startswith("version: "):
            return "9"
        code = self._kernel_version_code(timeout)
        if not code:
            return None
        return "8.4" if code >> 16 == 8 else "9"

    def _kernel_version_code(self, timeout: float) -> int | None:
        """DRBD_KERNEL_VERSION_CODE from `drbdsetup --version` (0: no module loaded);
        None when drbdsetup is not installed or does not say."""
        if not self.drbdsetup.installed():
            return None
        result = self.drbdsetup.run(["--version"], min(timeout, QUERY_TIMEOUT))
        for line in result.stdout.splitlines():
            key, _eq, value = line.partition("=")
            if key == "DRBD_KERNEL_VERSION_CODE":
                try:
                    return int(value, 16) if value.startswith("0x") else 0
                except ValueError:
                    return None
        return None

    def system_sign(self) -> str | None:
        """Why the DRBD kernel module is loaded here (a phrase), None when nothing says
        so: /sys/module/drbd or /proc/drbd, else the kernel's own answer through an
        installed drbdsetup."""
        from xenha.tools.host import Host, sign_of_drbd

        sign = sign_of_drbd(Host(self.env))
        if sign is None and self._kernel_version_code(SIGN_TIMEOUT):
            sign = "drbdsetup --version reports a loaded DRBD module"
        return sign

    # --- reading ------------------------------------------------------------------------------
    def state(self, timeout: float) -> ResourceState | None:
        """The resource on this node, or None when it is not configured (certain)."""
        if self.version is None and self.detect_version(timeout) is None:
            raise DrbdError("no DRBD kernel module is loaded")
        return BACKENDS[self.version](self, timeout)

    def dump(self, timeout: float) -> str:
        """`drbdadm dump RES`: the resource as defined for this host (DrbdError
        when drbdadm refuses it: not defined here, parse error, ...); see allows_two_primaries."""
        result = self.adm(["dump", self.resource], min(timeout, QUERY_TIMEOUT))
        if not result.ok:
            raise command_failed(result, via_drbdadm=True)
        return result.stdout

    def backing_device(self, volume: str, timeout: float) -> str:
        """The lower-level device of one volume (`drbdadm sh-ll-dev RES/VOL`)."""
        result = self.adm(["sh-ll-dev", f"{self.resource}/{volume}"], min(timeout, QUERY_TIMEOUT))
        if not result.ok or not result.stdout.strip():
            raise DrbdError(f"cannot find the backing device of {self.resource}/{volume}: {result.describe()}",
                            result)
        return result.stdout.strip().splitlines()[0]

    # --- changing ---------------------------------------------------------------------------
    def up(self, timeout: float) -> None:
        self._change(["up", self.resource], timeout)

    def adjust(self, timeout: float) -> None:
        """Apply the configuration's differences (connect to a peer that came, ...)."""
        self._change(["adjust", self.resource], timeout)

    def primary(self, timeout: float, force: bool = False) -> None:
        """Promote; `force` makes this node's data UpToDate whatever it is (the initial
        sync's source: every peer then syncs from here)."""
        self._change(["primary", *(["--force"] if force else []), self.resource], timeout)

    def secondary(self, timeout: float) -> None:
        self._change(["secondary", self.resource], timeout)

    def skip_initial_sync(self, timeout: float) -> None:
        """`drbdadm new-current-uuid --clear-bitmap RES` (DRBD 9 and 8.4 alike): on a new
        resource whose replicas are connected and all Inconsistent, every replica becomes
        UpToDate without a resync. The kernel refuses it on a resource that has data of
        its own or is not connected ((151) Need to be StandAlone)."""
        self._change(["new-current-uuid", "--clear-bitmap", self.resource], timeout)

    def down(self, timeout: float) -> None:
        self._change(["down", self.resource], timeout)

    def teardown(self, timeout: float) -> None:
        """`drbdsetup down RES`: needs no configuration file and no drbdadm (stop's last
        resort). Succeeds when the resource is not configured."""
        result = self.drbdsetup.run(["down", self.resource], min(timeout, CHANGE_TIMEOUT))
        if not result.ok and not not_configured(result):
            raise command_failed(result)

    def has_metadata(self, timeout: float) -> bool:
        """Whether the backing devices hold DRBD meta-data (`drbdadm dump-md`: drbdmeta
        reads them; meant for a resource that is not attached)."""
        result = self.adm(["dump-md", self.resource], min(timeout, QUERY_TIMEOUT))
        if result.ok:
            return True
        if result.returncode == 1 and "No valid meta data found" in result.stderr + result.stdout:
            return False
        raise command_failed(result)

    def create_metadata(self, timeout: float) -> None:
        """`drbdadm create-md RES`, never forced: drbdmeta asks before overwriting
        anything it finds (meta-data, a file system), and with no one to answer it
        refuses (a DrbdError with its words)."""
        self._change(["create-md", self.resource], timeout)

    def adm(self, args, timeout: float) -> runner.CommandResult:
        conf = ["-c", self.conf] if self.conf else []
        return self.drbdadm.run([*conf, *args], timeout)

    def _change(self, args, timeout: float) -> None:
        result = self.adm(args, min(timeout, CHANGE_TIMEOUT))
        if not result.ok:
            raise command_failed(result, via_drbdadm=True)
