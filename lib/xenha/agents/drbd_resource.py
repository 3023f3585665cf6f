"""ocf:xenha:drbd-resource — a DRBD resource as a promotable clone (dual-primary capable).

A better drop-in for ocf:linbit:drbd (same `drbd_resource` parameter, which drbd-utils'
crm-fence-peer handlers look for): OCF 1.1 meta-data that validates, health reported by
the monitor instead of hidden, state read from `drbdsetup events2 --now` (DRBD 9) or
drbdadm role/cstate/dstate (8.4), promotion scores written only when they change.

Monitor (the full table is in the README):
    not configured                          7
    Secondary / Primary, healthy            0 / 8
    degraded: peer not connected, resync,   190 / 191 (Pacemaker shows it, no recovery)
      peer or local disk not UpToDate, I/O suspended, quorum lost, stale fencing constraint
    broken: local disk Failed or Diskless,  1 / 9 (recovery)
      StandAlone (split brain or manual disconnect)

Promotion: only a node whose local data is UpToDate gets a promotion score (10000 when
the peer is connected or known not UpToDate, 1000 when the peer's state is unknown);
promote refuses, with a reason, without UpToDate data (drbdsetup exit 17, not retried),
and refuses to become a second Primary unless connected to the other Primary with both
disks UpToDate (the only safe dual-primary: live migration).
"""

from xenha.ocf import codes
from xenha.ocf.agent import Action, ResourceAgent, main as ocf_main
from xenha.ocf.codes import OcfError
from xenha.ocf.parameters import INTEGER, SELECT, STRING, Parameter
from xenha.tools import drbd, runner

DEFAULT_SCORES = "1000 10000"

PARAMETERS = (
    Parameter("drbd_resource", STRING, "DRBD resource name",
              "Name of the DRBD resource, as in the DRBD configuration (checked through drbdadm). The same "
              "name as ocf:linbit:drbd's, which drbd-utils' crm-fence-peer handlers look for in the CIB.",
              required=True, unique_group="drbd-resource"),
    Parameter("drbdconf", STRING, "DRBD configuration file",
              "Full path of the DRBD configuration file given to drbdadm -c.",
              default="/etc/drbd.conf"),
    Parameter("promotion_scores", STRING, "promotion scores (2 integers)",
              "Two increasing integers: the promotion score of a node whose data is UpToDate while the "
              "peer's state is unknown (disconnected), and while the peer is connected or known not "
              "UpToDate. A node without UpToDate data is never promoted (its score is removed). Four "
              "numbers, as ocf:linbit:drbd's adjust_master_score takes, are accepted: the last two are "
              "used, the first two (scores for nodes without UpToDate data) are ignored by design.",
              default=DEFAULT_SCORES, reloadable=True),
    Parameter("adjust_master_score", STRING, "promotion scores (deprecated name)",
              "Name used by ocf:linbit:drbd; accepted as an alias of promotion_scores.",
              replaced_with="promotion_scores", deprecated_note="Use promotion_scores."),
    Parameter("wfc_timeout", INTEGER, "seconds start waits for the peer",
              "How long start waits for the connection to the peer. A missing peer is not an error: the "
              "resource starts degraded (monitor says so) and connects when the peer comes.",
              default=5, minimum=0, reloadable=True),
    Parameter("drbd_version", SELECT, "DRBD kernel version family",
              "auto: ask the loaded DRBD module (/proc/drbd, else drbdadm --version). 9 or 8.4: force "
              "the tool path (drbdsetup events2/status --json for 9; drbdadm role/cstate/dstate for 8.4).",
              default="auto", options=("auto", "9", "8.4")),
    Parameter("drbdadm", STRING, "drbdadm binary", "The drbdadm command (a name on PATH, or a path).",
              default="drbdadm"),
)

ACTIONS = (
    Action("start", 240),
    Action("stop", 100),
    Action("promote", 90),
    Action("demote", 90),
    Action("notify", 90),
    Action("monitor", 20, interval=29, role="Promoted"),
    Action("monitor", 20, interval=31, role="Unpromoted"),
    Action("reload-agent", 30),
    Action("validate-all", 30),
    Action("meta-data", 5),
)


# --- decisions: pure functions of the parsed state --------------------------------------
def parse_scores(text: str) -> tuple[int, int]:
    """(peer unknown, peer known) from "1000 10000", or the last two of LINBIT's four."""
    words = (text or "").split()
    try:
        numbers = [int(word) for word in words]
    except ValueError:
        raise OcfError(codes.ERR_CONFIGURED, f"parameter promotion_scores={text!r}: not integers") from None
    if len(numbers) not in (2, 4) or numbers != sorted(numbers):
        raise OcfError(codes.ERR_CONFIGURED,
                       f"parameter promotion_scores={text!r}: need 2 (or 4) non-decreasing integers")
    return numbers[-2], numbers[-1]


def problems_of(state: drbd.ResourceState) -> tuple[list[str], list[str]]:
    """(errors, degradations) of a configured resource, as short phrases."""
    errors, degraded = [], []
    for device in state.devices.values():
        if device.disk == "Failed":
            errors.append(f"volume {device.volume}: local disk Failed (I/O error)")
        elif device.disk in ("Diskless", "Detaching") and not device.client:
            errors.append(f"volume {device.volume}: no local disk ({device.disk})")
        elif device.disk != "UpToDate":
            degraded.append(f"volume {device.volume}: local disk {device.disk}")
        if not device.quorum:
            degraded.append(f"volume {device.volume}: no quorum")
    for connection in state.connections.values():
        peer = connection.name or f"node {connection.peer_node_id}"
        if connection.state == "StandAlone":
            errors.append(f"StandAlone towards {peer}: not connecting (split brain or manual disconnect)")
        elif not connection.connected:
            degraded.append(f"{peer} not connected ({connection.state})")
        else:
            for peer_device in state.peers_of(connection.peer_node_id):
                if peer_device.resyncing:
                    done = f" {peer_device.done:.1f}% done" if peer_device.done is not None else ""
                    degraded.append(f"resync {peer_device.replication} with {peer}{done}")
                elif peer_device.peer_disk != "UpToDate":
                    degraded.append(f"{peer} disk {peer_device.peer_disk}")
    if state.suspended_io:
        degraded.append(f"I/O suspended ({state.suspended}; fencing in progress?)")
    return errors, degraded


def monitor_verdict(state: drbd.ResourceState | None) -> tuple[int, str]:
    """The monitor's answer and reason for a resource state (None: not configured)."""
    if state is None:
        return codes.NOT_RUNNING, "not configured"
    promoted = state.primary
    errors, degraded = problems_of(state)
    if errors:
        return (codes.FAILED_PROMOTED if promoted else codes.ERR_GENERIC), "; ".join(errors)
    if degraded:
        return (codes.DEGRADED_PROMOTED if promoted else codes.DEGRADED), "; ".join(degraded)
    if state.role not in ("Primary", "Secondary"):
        return codes.ERR_GENERIC, f"role {state.role}"
    return (codes.RUNNING_PROMOTED if promoted else codes.SUCCESS), "healthy"


def promotion_score(state: drbd.ResourceState | None, scores: tuple[int, int]) -> int | None:
    """The promotion score this node deserves; None means "remove it" (never promote)."""
    if state is None or not state.all_local_up_to_date():
        return None
    if any(not device.quorum for device in state.devices.values()):
        return None
    unknown, known = scores
    for connection in state.connections.values():
        if not connection.connected:
            return unknown
        for peer_device in state.peers_of(connection.peer_node_id):
            if peer_device.peer_disk == "DUnknown":
                return unknown
    return known


def promote_refusal(state: drbd.ResourceState | None) -> str | None:
    """Why this node must not become Primary now, or None."""
    if state is None:
        return "the resource is not up on this node"
    if not state.all_local_up_to_date():
        return f"refusing to promote without UpToDate data (local disk {'/'.join(state.disks())})"
    for connection in state.connections.values():
        if connection.peer_role != "Primary":
            continue
        peer = connection.name or f"node {connection.peer_node_id}"
        if not connection.connected:
            return f"{peer} is Primary and not connected: a second Primary would diverge (split brain)"
        bad = [p.peer_disk for p in state.peers_of(connection.peer_node_id) if p.peer_disk != "UpToDate"]
        if bad:
            return f"{peer} is Primary with disk {'/'.join(bad)}: dual-primary needs both UpToDate"
    return None
