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

from xenha import names
from xenha.ocf import codes
from xenha.ocf.agent import Action, ResourceAgent, ToolMissing, main as ocf_main
from xenha.ocf.codes import OcfError
from xenha.ocf.deadline import DeadlineExceeded
from xenha.ocf.parameters import INTEGER, SELECT, STRING, Parameter
from xenha.tools.binaries import ToolNotFound
from xenha.tools.drbd import (QUERY_TIMEOUT, Drbd, DrbdError, DrbdRefused, ResourceState,
                              allows_two_primaries)

DEFAULT_SCORES = "1000 10000"


class ModuleAbsent(OcfError):
    """No DRBD kernel module is loaded: no resource can be configured on this node."""

    def __init__(self):
        super().__init__(codes.ERR_INSTALLED, "the DRBD kernel module is not loaded")

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


def problems_of(state: ResourceState) -> tuple[list[str], list[str]]:
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


def monitor_verdict(state: ResourceState | None) -> tuple[int, str]:
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


def promotion_score(state: ResourceState | None, scores: tuple[int, int]) -> int | None:
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


def promote_refusal(state: ResourceState | None) -> str | None:
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


# --- the agent ----------------------------------------------------------------------------
class DrbdResourceAgent(ResourceAgent):
    NAME = "drbd-resource"
    SHORTDESC = "DRBD resource, promotable (dual-primary for live migration)"
    LONGDESC = (
        "Manages one DRBD resource as a promotable clone: start brings it up (attach and connect "
        "through drbdadm) and leaves it Secondary, promote makes it Primary only with UpToDate data "
        "(and, as a second Primary, only while connected to the other Primary with both disks "
        "UpToDate, which is what live migration needs), demote and stop take it back. The monitor "
        "reports health: 190/191 while the peer is missing, a resync runs, a disk is not UpToDate, "
        "I/O is suspended or a stale fencing constraint is left in the CIB; 1/9 for a failed or "
        "missing local disk and for StandAlone (split brain). Promotion scores are written with "
        "crm_attribute --promotion, only when they change. validate-all checks the clone meta "
        "attributes (promoted-max at most 2, promoted-node-max 1, clone-node-max 1, notify=true, "
        "allow-two-primaries in the DRBD configuration when promoted-max is 2). Left out compared "
        "with ocf:linbit:drbd: stop_outdates_secondary (disabled upstream), ignore_missing_notifications "
        "(notify is required), remove_master_score_if_peer_primary and fail_promote_early_if_peer_primary "
        "(for single-primary setups; here the promote rules above decide), module version bounds "
        "(DRBD 9 and 8.4 are both handled), connect_only_after_promote and unfence_extra_args.")
    PARAMETERS = PARAMETERS
    ACTIONS = ACTIONS
    # validate-all at 10 also asks drbdadm about the resource (module, file, dump)
    CHECK_LEVELS = (0, 10)

    def __init__(self, env, log, deadline):
        super().__init__(env, log, deadline)
        self.resource = self.params.drbd_resource or ""
        self._drbd = None
        self._crm = None
        self._record = None

    # --- collaborators -------------------------------------------------------------------
    @property
    def record(self):
        if self._record is None:
            from xenha.ocf.state import ResourceRecord
            self._record = ResourceRecord(self.env.rsctmp, self.NAME, self.env.instance)
        return self._record

    @property
    def drbd(self) -> Drbd:
        """The driver; its version is the forced one, else the one start remembered, else
        unknown until `check_module` detects it."""
        if self._drbd is None:
            forced = self.params.drbd_version
            version = forced if forced != "auto" else self.record.read().get("version") or None
            self._drbd = Drbd(self.resource, self.params.drbdconf, self.params.drbdadm, self.env.environ, version)
        return self._drbd

    @property
    def crm(self):
        if self._crm is None:
            from xenha.tools.crm import Crm
            self._crm = Crm(env=self.env.environ)
        return self._crm

    def check_module(self) -> None:
        """5 without a DRBD module (probe 7, monitor 1, stop 0)."""
        if self.drbd.version is None and self.drbd.detect_version(self.deadline.timeout(QUERY_TIMEOUT)) is None:
            raise ModuleAbsent()

    def config_problem(self) -> str | None:
        """Why drbdadm cannot read the configuration file, None when it can (a FIFO or a
        directory is refused here: drbdadm would block on it or fail)."""
        from xenha.ocf.files import check_regular

        path = self.params.drbdconf
        try:
            check_regular(path)
        except OSError as error:
            return f"DRBD configuration {path} unreadable: {error.strerror or error}"
        return None

    def state(self) -> ResourceState | None:
        self.check_module()
        if self.drbd.version == "8.4":   # 8.4's state comes from drbdadm, which reads the configuration
            problem = self.config_problem()
            if problem:
                raise OcfError(codes.ERR_GENERIC, f"cannot read the state of {self.resource}: {problem}")
        try:
            return self.drbd.state(self.deadline.timeout())
        except DrbdError as error:
            raise OcfError(codes.ERR_GENERIC, str(error)) from None

    # --- validation ------------------------------------------------------------------------
    def parameter_problems(self) -> list[OcfError]:
        problems = []
        why = self.name_problem()
        if why:
            problems.append(why)
        if not self.params.drbdconf.startswith("/"):
            problems.append(self.invalid("drbdconf", "is not an absolute path"))
        return problems

    def name_problem(self) -> OcfError | None:
        """A resource name drbdadm could never have configured (it reads "all" as every
        resource, a leading "-" as an option, ...): code 6, and nothing runs with it."""
        why = self.resource and names.check_drbd_resource_name(self.resource)
        return self.invalid("drbd_resource", why) if why else None

    def check_environment(self) -> None:
        action = self.env.action
        if action != "stop":
            parse_scores(self.params.promotion_scores)
        if not self.resource:
            raise OcfError(codes.ERR_CONFIGURED, "parameter drbd_resource is not set")
        problem = self.name_problem()
        if problem:
            raise problem   # for stop too: `drbdsetup down all` must never run
        if action in ("start", "promote", "validate-all", "reload-agent", "notify"):
            self.check_clone_meta()
        if action in ("validate-all", "reload-agent") and self.check_level < 10:
            return
        self.require(self.drbd)
        self.check_module()
        if action not in ("stop", "monitor"):
            # Actions that run drbdadm with the configuration. Monitor and stop do not need
            # it (drbdsetup reads the kernel's state): an unusable file never makes them
            # answer "not running" (see state() for DRBD 8.4, whose state comes from drbdadm).
            problem = self.config_problem()
            if problem:
                raise OcfError(codes.ERR_INSTALLED, problem)
        if action in ("start", "validate-all"):
            self.check_configuration()

    def check_clone_meta(self) -> None:
        env = self.env
        if not env.is_clone:
            return  # a plain primitive (ocf-tester, crm_resource --force-*): nothing to check
        problems = []
        if env.clone_node_max not in (None, 1):
            problems.append(f"clone-node-max={env.clone_node_max} (must be 1)")
        if env.is_promotable:
            if env.promoted_node_max not in (None, 1):
                problems.append(f"promoted-node-max={env.promoted_node_max} (must be 1)")
            if (env.promoted_max or 1) > 2:
                problems.append(f"promoted-max={env.promoted_max} (DRBD allows at most 2 Primaries)")
            if env.promoted_max == 2 and (env.clone_max or 0) > 2:
                problems.append(f"clone-max={env.clone_max} with promoted-max=2 (at most 2)")
            if not env.notify_enabled:
                problems.append("notify=false (set notify=true on the clone)")
        if problems:
            raise OcfError(codes.ERR_CONFIGURED, "clone meta attributes: " + ", ".join(problems))

    def check_configuration(self) -> None:
        """The resource is defined for this host; dual-primary needs allow-two-primaries."""
        try:
            dump = self.drbd.dump(self.deadline.timeout())
        except DrbdError as error:
            raise OcfError(codes.ERR_INSTALLED, f"{self.resource} is not usable on this node: {error}") from None
        if (self.env.promoted_max or 1) >= 2 and not allows_two_primaries(dump):
            raise OcfError(codes.ERR_CONFIGURED,
                           f"promoted-max=2 needs 'allow-two-primaries yes;' in the net section of {self.resource}")

    def stop_when_invalid(self, problem: OcfError) -> int:
        if not self.resource or self.name_problem():
            self.log.info(f"{problem.reason}: this resource never configured anything through drbdadm; "
                          "stop succeeds")
            return codes.SUCCESS
        if isinstance(problem, (ToolMissing, ModuleAbsent)):
            self.log.info(f"{problem.reason}, and no DRBD module on this host: nothing can be configured; "
                          "stop succeeds")
            return codes.SUCCESS
        # drbdadm unusable (missing, or its configuration): drbdsetup needs neither.
        return self.take_down_without_drbdadm(problem.reason)

    def take_down_without_drbdadm(self, why: str) -> int:
        """`drbdsetup down`: 0 when the resource is down (or was not configured), else 1."""
        try:
            self.drbd.teardown(self.deadline.timeout())
        except ToolNotFound:
            self.log.exit_reason(f"cannot take {self.resource} down: drbdsetup not found ({why})")
            return codes.ERR_GENERIC
        except DrbdError as error:
            self.log.exit_reason(f"cannot take {self.resource} down: {error}")
            return codes.ERR_GENERIC
        self.set_score(None)
        return codes.SUCCESS

    # --- promotion score -----------------------------------------------------------------
    def set_score(self, score: int | None) -> None:
        """crm_attribute --promotion, only when the value changes (cached in HA_RSCTMP)."""
        record = self.record.read()
        wanted = "" if score is None else str(score)
        if record.get("score", "<none>") == wanted:
            return
        from xenha.tools.crm import CrmError  # only when the score changes: not on a steady monitor

        try:
            self.crm.set_promotion_score(score, self.env.on_node, self.deadline.timeout(reserve=1.0))
        except (CrmError, DeadlineExceeded) as error:  # never fail an action over the score
            self.log.warning(f"cannot set the promotion score to {wanted or 'none'}: {error}")
            return
        record["score"] = wanted
        self.record.write(record)

    def update_score(self, state) -> None:
        self.set_score(promotion_score(state, parse_scores(self.params.promotion_scores)))

    # --- actions ---------------------------------------------------------------------------
    def action_monitor(self) -> int:
        state = self.state()
        code, reason = monitor_verdict(state)
        if state is None:
            return code
        self.update_score(state)
        if any(not connection.connected for connection in state.connections.values()):
            self.watch_fencing()
        elif code in (codes.SUCCESS, codes.RUNNING_PROMOTED):
            stale = self.stale_fencing_constraint()
            if stale:
                code = codes.DEGRADED_PROMOTED if code == codes.RUNNING_PROMOTED else codes.DEGRADED
                reason = stale
        if code not in (codes.SUCCESS, codes.RUNNING_PROMOTED):
            self.log.exit_reason(reason)
        return code

    def watch_fencing(self) -> None:
        """The peer was unreachable: a fence-peer handler may have left a constraint."""
        record = self.record.read()
        if record.get("fence_watch") != "1":
            record["fence_watch"] = "1"
            self.record.write(record)

    def stale_fencing_constraint(self) -> str | None:
        """A `drbd-fence-by-handler-<res>-*` constraint left while everything is UpToDate
        and connected (the unfence handler failed: drbd-utils#11). Looked for only after the
        peer was seen unreachable, so healthy monitors make no CIB query."""
        record = self.record.read()
        if record.get("fence_watch") != "1":
            return None
        from xenha.tools.crm import CrmError

        try:
            found = self.crm.fencing_constraints(self.resource, self.deadline.timeout(reserve=1.0))
        except CrmError:
            return None  # cannot tell: keep watching
        if found:
            ident = found[0]
            return (f"stale fencing constraint {ident}: all disks are UpToDate and connected, but it still "
                    f"forbids promotion (remove it: pcs constraint delete {ident})")
        record.pop("fence_watch", None)
        self.record.write(record)
        return None

    def action_start(self) -> int:
        state = self.state()
        if state is None:
            try:
                self.drbd.up(self.deadline.timeout(reserve=5.0))
            except DrbdError as error:
                raise OcfError(codes.ERR_GENERIC, f"drbdadm up {self.resource}: {error}") from None
        else:
            try:
                self.drbd.adjust(self.deadline.timeout(reserve=5.0))
            except DrbdError as error:
                self.log.warning(f"drbdadm adjust {self.resource}: {error}")
        state = self.state()
        if state is None:
            raise OcfError(codes.ERR_GENERIC, f"{self.resource} is not configured after drbdadm up")
        if state.primary:
            self.demote_to_secondary()  # start leaves the instance Unpromoted
        state = self.wait_for_peer()
        record = self.record.read()
        record["version"] = self.drbd.version
        self.record.write(record)
        self.update_score(state)
        if self.env.is_clone and monitor_verdict(state)[0] != codes.SUCCESS:
            self.log.info(f"{self.resource} started: {monitor_verdict(state)[1]}")
        return codes.SUCCESS

    def wait_for_peer(self) -> ResourceState:
        """Wait up to wfc_timeout for the connections; a missing peer is not an error."""
        limit = self.deadline.remaining(reserve=3.0)
        waited, pause = 0.0, 0.1
        state = self.state()
        while waited < min(float(self.params.wfc_timeout), limit):
            if state is not None and state.connections and all(c.connected for c in state.connections.values()):
                return state
            if not self.deadline.sleep(pause, reserve=3.0):
                break
            waited += pause
            pause = min(pause * 2, 1.0)
            state = self.state()
        if state is not None and not all(c.connected for c in state.connections.values()):
            self.log.info(f"{self.resource}: peer not connected after {self.params.wfc_timeout}s; continuing")
        return state

    def demote_to_secondary(self) -> None:
        pause = 0.2
        while True:
            try:
                self.drbd.secondary(self.deadline.timeout(reserve=2.0))
                return
            except DrbdRefused as refused:
                raise OcfError(codes.ERR_GENERIC, f"DRBD refused to demote {self.resource}: {refused}") from None
            except DrbdError as error:
                last = str(error)
            self.log.warning(f"drbdadm secondary {self.resource}: {last}")
            if not self.deadline.sleep(pause, reserve=2.0):
                raise OcfError(codes.ERR_GENERIC, f"cannot demote {self.resource}: {last}")
            pause = min(pause * 2, 2.0)

    def action_stop(self) -> int:
        state = self.state()
        if state is not None:
            unusable = self.config_problem()
            if unusable:
                # drbdadm would fail (or block on a FIFO): drbdsetup down needs no configuration.
                self.log.warning(f"{unusable}; taking {self.resource} down with drbdsetup")
                if self.take_down_without_drbdadm(unusable) != codes.SUCCESS:
                    return codes.ERR_GENERIC
            else:
                self.down_with_drbdadm(state)
            if self.state() is not None:
                raise OcfError(codes.ERR_GENERIC, f"{self.resource} is still configured after down")
        self.set_score(None)
        record = self.record.read()
        record.pop("version", None)
        self.record.write(record)
        return codes.SUCCESS

    def down_with_drbdadm(self, state: ResourceState) -> None:
        """Secondary, then down, through drbdadm; drbdsetup down when drbdadm fails."""
        try:
            if state.primary:
                self.demote_to_secondary()
            self.drbd.down(self.deadline.timeout(reserve=2.0))
            return
        except OcfError as failure:
            why = failure.reason
        except DrbdError as failure:
            why = str(failure)
        self.log.warning(f"{why}; trying drbdsetup down {self.resource}")
        try:
            self.drbd.teardown(self.deadline.timeout(reserve=1.0))
        except DrbdError as last:
            raise OcfError(codes.ERR_GENERIC, f"cannot take {self.resource} down: {last}") from None

    def action_promote(self) -> int:
        state = self.state()
        if state is None:
            raise OcfError(codes.ERR_GENERIC, f"cannot promote {self.resource}: not started")
        if state.primary:
            return codes.SUCCESS
        refusal = promote_refusal(state)
        if refusal:
            self.update_score(state)
            raise OcfError(codes.ERR_GENERIC, refusal)
        pause = 0.5
        while True:
            try:
                self.drbd.primary(self.deadline.timeout(reserve=2.0))
                break
            except DrbdRefused as refused:   # no retry can change it: say DRBD's reason at once
                self.update_score(self.state())
                raise OcfError(codes.ERR_GENERIC, f"DRBD refused to promote {self.resource}: {refused}") from None
            except DrbdError as error:
                words = str(error)
            self.log.warning(f"drbdadm primary {self.resource}: {words}; retrying")
            if not self.deadline.sleep(pause, reserve=2.0):
                raise OcfError(codes.ERR_GENERIC, f"cannot promote {self.resource}: {words}")
            pause = min(pause * 2, 4.0)
        state = self.state()
        if state is None or not state.primary:
            raise OcfError(codes.ERR_GENERIC, f"{self.resource} is not Primary after drbdadm primary")
        self.update_score(state)
        return codes.SUCCESS

    def action_demote(self) -> int:
        state = self.state()
        if state is None:
            raise OcfError(codes.NOT_RUNNING, f"cannot demote {self.resource}: not configured")
        if state.primary:
            self.demote_to_secondary()
        self.update_score(self.state())
        return codes.SUCCESS

    def action_notify(self) -> int:
        notify = self.env.notify()
        try:
            state = self.state()
            if state is None:
                return codes.SUCCESS
            if notify.type == "post" and notify.operation == "start":
                # A peer came up: make sure we connect to it (drbdadm applies only differences).
                try:
                    self.drbd.adjust(self.deadline.timeout(reserve=2.0))
                except DrbdError as error:
                    self.log.warning(f"drbdadm adjust {self.resource}: {error}")
                state = self.state()
            if notify.type == "post":
                self.update_score(state)
        except OcfError as problem:
            self.log.warning(f"notify {notify.type}-{notify.operation}: {problem.reason}")
        return codes.SUCCESS

    def action_validate_all(self) -> int:
        return codes.SUCCESS

    def action_reload_agent(self) -> int:
        return codes.SUCCESS


def main() -> int:
    return ocf_main(DrbdResourceAgent)
