"""ocf:xenha:xen-domain — one Xen domain (domU), live-migratable, driven through `xl`.

Truthfulness rules (see design.md): the domain's state comes from the parsed `xl list`
table, never from an exit code; "not running" (7) only when the listing positively
shows no trace of the domain under its own or a migration name; a toolstack error or an
unreadable answer is an error (1). Every `xl` call is bounded by the operation's
deadline, with time reserved for `xl destroy`.
"""

from xenha import names
from xenha.hypervisor import domain as dom
from xenha.ocf import codes
from xenha.ocf.agent import Action, ResourceAgent, ToolMissing, main as ocf_main
from xenha.ocf.codes import OcfError
from xenha.ocf.parameters import BOOLEAN, INTEGER, SELECT, STRING, Parameter
from xenha.ocf.state import ResourceRecord
from xenha.tools.xl import Xl, XlError, address_problem, config_string_problem, transport_problem

DEFAULT_TRANSPORT = "ssh -o BatchMode=yes -o ConnectTimeout=10"
SHUTDOWN_PV = "pv"
SHUTDOWN_PV_OR_ACPI = "pv-or-acpi"
SHUTDOWN_ACPI = "acpi"

# How long one `xl list` may take, and how often a failed one is retried.
LIST_TIMEOUT = 10.0
LIST_ATTEMPTS = 3
# A rebooting guest (on_reboot=restart) briefly disappears from `xl list`
# (resource-agents#314): a domain this node started is looked for again before it is
# declared gone.
VANISHED_RECHECKS = (0.5, 1.0, 1.5)
# migrate_from: how long to wait for a domain when no incoming copy is in flight.
ARRIVAL_GRACE = 10.0


PARAMETERS = (
    Parameter(
        "config", STRING, "xl domain configuration file",
        "Absolute path of the xl configuration file of the domain, as given to `xl create`. "
        "Legacy xm-style files work too (e.g. disk = [ 'drbd:vm_shaolin,hda1,w' ]). "
        "Only start and validation read it: monitor and stop identify the domain by name.",
        required=True, unique_group="xen-domain-config"),
    Parameter(
        "xmfile", STRING, "xl configuration file (deprecated, use config)",
        "Name used by ocf:heartbeat:Xen for the configuration file; accepted as an alias of config.",
        replaced_with="config", deprecated_note="Use config; xmfile is read only when config is not set."),
    Parameter(
        "name", STRING, "domain name",
        "Name of the domain as `xl list` shows it. Default: the name= setting of the config file. "
        "Setting it explicitly is recommended: then monitor and stop never depend on the file. "
        "Letters, digits, _ . and -; names xl reads as another domain (Domain-0, NAME--incoming, "
        "NAME--migratedaway, a number) are refused.",
        unique_group="xen-domain-name"),
    Parameter(
        "shutdown_mode", SELECT, "how stop asks the guest to shut down",
        "pv: `xl shutdown` (PV control interface); pv-or-acpi: `xl shutdown -F`, falling back "
        "to an ACPI power event for HVM guests without PV drivers; acpi: `xl trigger power`. "
        "Whatever the mode, stop destroys the domain when the graceful shutdown runs out of time.",
        default=SHUTDOWN_PV_OR_ACPI, options=(SHUTDOWN_PV, SHUTDOWN_PV_OR_ACPI, SHUTDOWN_ACPI),
        reloadable=True),
    Parameter(
        "shutdown_timeout", INTEGER, "seconds allowed for a graceful shutdown",
        "Seconds stop waits for the guest to shut down before `xl destroy`. 0 destroys at once. "
        "Default: two thirds of the stop operation's timeout. Time for destroy is always kept "
        "back from the stop timeout, whatever this says.",
        minimum=0, reloadable=True),
    Parameter(
        "migration_address_attribute", STRING, "node attribute holding the migration address",
        "Name of a permanent node attribute (crm_attribute --type nodes) whose value on the "
        "target node is the address migrate_to connects to. Default: the target's node name.",
        reloadable=True),
    Parameter(
        "node_ip_attribute", STRING, "node attribute with the migration address (deprecated)",
        "Name used by ocf:heartbeat:Xen; accepted as an alias of migration_address_attribute.",
        replaced_with="migration_address_attribute",
        deprecated_note="Use migration_address_attribute."),
    Parameter(
        "migration_transport", STRING, "command that reaches the target's xl",
        "Command `xl migrate -s` uses instead of plain ssh; xl appends the target address and "
        "`xl migrate-receive`. The default never prompts (BatchMode) and gives up connecting "
        "after 10 seconds. Plain words only (a program and its arguments): xl hands it to sh, so "
        "quotes, $, ;, | and other shell syntax are refused.",
        default=DEFAULT_TRANSPORT, reloadable=True),
    Parameter(
        "migration_preflight", BOOLEAN, "check the target before migrating",
        "Before `xl migrate`, run `xl list` on the target through the transport: proves that "
        "the transport works without prompting and that the target does not already hold the domain.",
        default=True, reloadable=True),
    Parameter(
        "monitor_scripts", STRING, "in-guest health checks (check level 10)",
        "Space-separated executables run by monitors with OCF_CHECK_LEVEL=10 after the domain "
        "is seen running; each gets the domain name as its argument. A non-zero exit fails the monitor.",
        reloadable=True),
    Parameter(
        "xl", STRING, "xl binary", "The xl command (a name looked up on PATH, or a path).",
        default="xl", reloadable=True),
)

ACTIONS = (
    Action("start", 90),
    Action("stop", 120),
    Action("monitor", 30, interval=10, depth=0),
    Action("monitor", 60, interval=60, depth=10),
    Action("migrate_to", 300),
    Action("migrate_from", 120),
    Action("validate-all", 30),
    Action("reload-agent", 10),
    Action("meta-data", 5),
)


class XenDomainAgent(ResourceAgent):
    NAME = "xen-domain"
    SHORTDESC = "Xen domain (domU) managed with xl, live-migratable"
    LONGDESC = (
        "Runs one Xen domain with the xl toolstack. Monitor reads the state letters of "
        "`xl list` (running, blocked, paused, shut down, crashed, dying) and the names xl "
        "uses during live migration (NAME--incoming, NAME--migratedaway); only a running "
        "domain is reported as running, and a toolstack error is an error, never 'stopped'. "
        "Stop shuts the guest down gracefully, then destroys it, within the operation's "
        "timeout. migrate_to pushes the domain to the target with `xl migrate` and tells "
        "apart failures before the point of no return (the domain keeps running here) from "
        "failures during the final handshake (state undefined: stop then cleans up both "
        "nodes). Left out on purpose compared with ocf:heartbeat:Xen: memory management of "
        "other domains (it rewrote the user's config file) and utilization updates on "
        "every monitor (monitors stay read-only).")
    PARAMETERS = PARAMETERS
    ACTIONS = ACTIONS
    CHECK_LEVELS = (0, 10)

    def __init__(self, env, log, deadline, hypervisor=None):
        super().__init__(env, log, deadline)
        self.xl = hypervisor if hypervisor is not None else Xl(self.params.xl, env=env.environ)
        self.record = ResourceRecord(env.rsctmp, self.NAME, env.instance)

    # --- validation ------------------------------------------------------------------
    def parameter_problems(self) -> list[OcfError]:
        problems = []
        why = transport_problem(self.params.migration_transport)
        if why:
            problems.append(self.invalid("migration_transport", why))
        attribute = self.params.migration_address_attribute
        why = attribute and names.check_pacemaker_id(attribute)
        if why:
            problems.append(self.invalid("migration_address_attribute", why))
        # A name is checked where a domain gets it (start, migration): monitor and stop
        # look for the exact name in `xl list` whatever it is, and pass it after `--`.
        if self.params.name and self.env.action not in ("monitor", "stop"):
            why = domain_name_problem(self.params.name)
            if why:
                problems.append(self.invalid("name", why))
        return problems

    def check_environment(self) -> None:
        action = self.env.action
        if action in ("validate-all", "reload-agent") and self.check_level < 10:
            return
        if action in ("monitor", "stop", "migrate_to", "migrate_from"):
            self.check_not_another_domain()
        self.require(self.xl)
        if action == "start":
            self.load_config()

    def check_not_another_domain(self) -> None:
        """6 when xl would read this resource's domain name as another domain (dom0, a
        migration copy, a domain id): no command may touch that domain; stop answers 0
        (this resource could never have started it), a probe 7."""
        name = self.domain_name()
        why = names.check_other_domain(name)
        if why:
            raise OcfError(codes.ERR_CONFIGURED, f"domain name {name!r} {why}")

    def stop_when_invalid(self, problem: OcfError) -> int:
        if names.check_other_domain(self.domain_name()):
            self.log.info(f"{problem.reason}: this resource never started that domain; stop succeeds")
            return codes.SUCCESS
        if isinstance(problem, ToolMissing):
            # Neither Xen nor its toolstack on this host (tools/host.py): no domain can run here.
            self.log.info(f"{problem.reason}, and this host has no Xen: no domain can run here; stop succeeds")
            self.record.remove()
            return codes.SUCCESS
        return super().stop_when_invalid(problem)

    def load_config(self):
        """The parsed config file: 5 when missing or unreadable here, 6 when malformed."""
        from xenha.tools import xl_config  # only start and validation read the file

        path = self.params.config
        if not path:
            raise OcfError(codes.ERR_CONFIGURED, "parameter config is not set")
        if not path.startswith("/") or "=" in path:
            raise self.invalid("config", "must be an absolute path without '=' (xl create reads '=' as a setting)")
        try:
            return xl_config.load(path)
        except FileNotFoundError:
            raise OcfError(codes.ERR_INSTALLED, f"config file {path} does not exist on this node") from None
        except OSError as error:
            raise OcfError(codes.ERR_INSTALLED, f"config file {path} is unreadable: {error.strerror}") from None
        except xl_config.XlConfigError as error:
            raise OcfError(codes.ERR_CONFIGURED, str(error)) from None

    # --- identity --------------------------------------------------------------------
    def domain_name(self) -> str:
        """Which domain this resource is: the name parameter, else what start recorded,
        else the config's name=, else the resource id."""
        if self.params.name:
            return self.params.name
        recorded = self.record.read().get("name")
        if recorded:
            return recorded
        return self.configured_name()

    def configured_name(self) -> str:
        if self.params.name:
            return self.params.name
        try:
            name = self.load_config().name
        except OcfError as problem:
            self.log.warning(f"{problem.reason}; using the resource id as domain name")
            name = None
        return name or self.env.instance

    # --- observing -------------------------------------------------------------------
    def observe(self, name: str) -> dom.DomainPresence:
        """One truthful look at the host's domains; retried on toolstack errors."""
        last = None
        for attempt in range(LIST_ATTEMPTS):
            try:
                timeout = self.deadline.timeout(LIST_TIMEOUT)
                return self.xl.presence(name, timeout)
            except XlError as error:
                last = error
                self.log.warning(f"xl list failed (attempt {attempt + 1}): {error}")
                if not self.deadline.sleep(0.5 * (attempt + 1)):
                    break
        raise OcfError(codes.ERR_GENERIC, f"cannot list domains, state unknown: {last}")

    def observe_settled(self, name: str) -> dom.DomainPresence:
        """Like observe, but a domain this node started is looked for again before it is
        declared absent (a rebooting guest briefly vanishes)."""
        presence = self.observe(name)
        if not presence.absent or self.record.read().get("name") != name:
            return presence
        for pause in VANISHED_RECHECKS:
            if not self.deadline.sleep(pause, reserve=self.step_reserve):
                break
            presence = self.observe(name)
            if not presence.absent:
                self.log.info(f"domain {name} reappeared: {presence.describe()}")
                return presence
        return presence

    # --- actions ---------------------------------------------------------------------
    def action_monitor(self) -> int:
        name = self.domain_name()
        presence = self.observe_settled(name)
        if presence.absent:
            self.log.debug(f"domain {name} is not present")
            return codes.NOT_RUNNING
        if not presence.running:
            raise OcfError(codes.ERR_GENERIC, not_running_reason(presence))
        if self.check_level >= 10:
            self.run_monitor_scripts(name)
        return codes.SUCCESS

    def run_monitor_scripts(self, name: str) -> None:
        scripts = (self.params.monitor_scripts or "").split()
        if not scripts:
            return
        from xenha.tools.binaries import ToolNotFound
        from xenha.tools.hook import run_hook

        for script in scripts:
            try:
                result = run_hook([script, name], self.deadline.timeout(reserve=0.5), env=self.env.environ)
            except ToolNotFound:
                raise OcfError(codes.ERR_GENERIC, f"monitor script {script} not found or not executable") from None
            if not result.ok:
                raise OcfError(codes.ERR_GENERIC, f"monitor script failed: {result.summary}")

    def action_start(self) -> int:
        config = self.load_config()
        name = self.params.name or config.name or self.env.instance
        why = domain_name_problem(name)
        if why:
            source = ("the name parameter" if self.params.name else
                      f"name= in {config.path}" if config.name else "the resource id")
            raise OcfError(codes.ERR_CONFIGURED, f"domain name {name!r} (from {source}) {why}")
        presence = self.observe(name)
        if presence.running:
            self.log.info(f"domain {name} is already running")
            self.remember(name)
            return codes.SUCCESS
        if not presence.absent:
            raise OcfError(codes.ERR_GENERIC, f"cannot start, domain present but not running: {presence.describe()}")
        self.remember(name)
        self.log.info(f"creating domain {name} from {config.path}")
        try:
            try:
                self.xl.create(config.path, name, self.deadline.timeout(reserve=self.step_reserve))
            except XlError as error:
                raise OcfError(codes.ERR_GENERIC, str(error)) from None
            self.wait_until_running(name)
        except OcfError:
            self.remove_failed_start(name)
            raise
        self.log.info(f"domain {name} is running")
        return codes.SUCCESS

    def remove_failed_start(self, name: str) -> None:
        """A start that failed leaves nothing behind: what exists under `name` now was
        created by this start (it was absent before), so it goes (best effort, logged;
        the stop Pacemaker runs next checks again)."""
        from xenha.ocf.deadline import DeadlineExceeded

        try:
            presence = self.xl.presence(name, self.deadline.timeout(LIST_TIMEOUT))
            for copy in presence.copies():
                self.log.info(f"start failed: destroying {copy.name} ({copy.state})")
                self.xl.destroy(copy.name, self.deadline.timeout(LIST_TIMEOUT))
        except (XlError, DeadlineExceeded) as error:
            self.log.warning(f"start failed and {name} could not be cleaned up: {error}")

    def wait_until_running(self, name: str) -> None:
        pause = 0.1
        presence = self.observe(name)
        while not presence.running:
            main = presence.main
            if main is not None and main.state in (dom.CRASHED, dom.SHUTDOWN, dom.DYING):
                raise OcfError(codes.ERR_GENERIC, f"domain {name} failed while starting: {presence.describe()}")
            if not self.deadline.sleep(pause, reserve=self.step_reserve):
                raise OcfError(codes.ERR_GENERIC, f"domain {name} did not come up in time: {presence.describe()}")
            pause = min(pause * 2, 1.0)
            presence = self.observe(name)

    def remember(self, name: str) -> None:
        if not self.record.write({"name": name}):
            self.log.warning(f"cannot write {self.record.path}; monitor will rely on parameters")

    def action_stop(self) -> int:
        name = self.domain_name()
        presence = self.observe(name)
        if presence.absent:
            self.record.remove()
            self.log.info(f"domain {name} is not running")
            return codes.SUCCESS
        reserve = self.destroy_reserve()
        if presence.main is not None and presence.main.active:
            self.shut_down_gracefully(name, reserve)
            presence = self.observe(name)
        pause = 0.1
        while not presence.absent:
            for copy in presence.copies():
                if copy.state != dom.DYING:
                    self.log.info(f"destroying {copy.name} ({copy.state})")
                    try:
                        # the whole reserve, not a listing's 10 s: a destroy killed half-way
                        # (its backends' hotplug scripts still running) leaves the domain
                        # behind, and on a slow host every retry would be killed again
                        self.xl.destroy(copy.name, self.deadline.timeout(reserve))
                    except XlError as error:
                        self.log.warning(f"xl destroy {copy.name} failed: {error}")
            if not self.deadline.sleep(pause, reserve=self.step_reserve):
                break
            pause = min(pause * 2, 1.0)
            presence = self.observe(name)
        if not presence.absent:
            raise OcfError(codes.ERR_GENERIC, f"domain still present after destroy: {presence.describe()}")
        self.record.remove()
        self.log.info(f"domain {name} stopped")
        return codes.SUCCESS

    @property
    def step_reserve(self) -> float:
        """Time kept back for one more listing and the answer: 10% of the operation's
        timeout, between 1 and LIST_TIMEOUT seconds."""
        return min(LIST_TIMEOUT, max(1.0, 0.1 * self.deadline.total))

    def destroy_reserve(self) -> float:
        """Seconds kept back from a stop for `xl destroy` and the final check."""
        return max(3.0, 0.15 * self.deadline.total)

    def graceful_budget(self, reserve: float) -> float:
        available = self.deadline.remaining(reserve)
        wanted = self.params.shutdown_timeout
        if wanted is None:
            wanted = self.deadline.total * 2.0 / 3.0
        return min(float(wanted), available)

    def shut_down_gracefully(self, name: str, reserve: float) -> None:
        budget = self.graceful_budget(reserve)
        if budget <= 0:
            self.log.info(f"no time for a graceful shutdown of {name}; destroying it")
            return
        mode = self.params.shutdown_mode
        self.log.info(f"shutting down {name} ({mode}), allowing {budget:.0f}s")
        try:
            if mode == SHUTDOWN_ACPI:
                self.xl.trigger_power(name, min(LIST_TIMEOUT, budget))
            else:
                self.xl.shutdown(name, min(LIST_TIMEOUT, budget), acpi_fallback=(mode == SHUTDOWN_PV_OR_ACPI))
        except XlError as error:
            self.log.warning(f"graceful shutdown request failed, destroying instead: {error}")
            return
        give_up = self.deadline.remaining() - budget
        pause = 0.2
        while self.deadline.remaining() > give_up:
            if not self.deadline.sleep(min(pause, max(0.0, self.deadline.remaining() - give_up))):
                return
            presence = self.observe(name)
            if presence.main is None or not presence.main.active:
                return
            pause = min(pause * 1.5, 2.0)
        self.log.warning(f"domain {name} did not shut down within {budget:.0f}s")

    def action_migrate_to(self) -> int:
        target = self.env.migrate_target
        if not target:
            raise OcfError(codes.ERR_GENERIC, "migrate_to without a target (CRM_meta_migrate_target is not set)")
        name = self.domain_name()
        presence = self.observe(name)
        if not presence.running:
            raise OcfError(codes.ERR_GENERIC, f"cannot migrate to {target}: {not_running_reason(presence)}")
        address = self.migration_address(target)
        transport = self.params.migration_transport
        if self.params.migration_preflight:
            self.preflight(name, target, address, transport)
        self.log.info(f"migrating {name} to {target} ({address})")
        try:
            outcome, result = self.xl.migrate(name, address, transport,
                                              self.deadline.timeout(reserve=self.step_reserve))
        except XlError as refused:   # refused before anything ran
            raise OcfError(codes.ERR_GENERIC, f"cannot migrate {name} to {target}: {refused}") from None
        xl_said = result.said()
        if outcome == dom.MIGRATED:
            self.record.remove()
            self.log.info(f"domain {name} migrated to {target}")
            return codes.SUCCESS
        self.log.error(f"xl migrate failed: {result.describe()}\n{result.stderr}")
        after = self.observe(name)
        if outcome == dom.FAILED_UNDEFINED:
            what = (f"xl migrate to {target} timed out" if result.timed_out
                    else f"migration to {target} failed in the final handshake")
            raise OcfError(codes.ERR_GENERIC,
                           f"{what}, state undefined (here: {short_presence(after)}): {xl_said}")
        if after.running:
            raise OcfError(codes.ERR_GENERIC,
                           f"migration to {target} failed before the point of no return, {name} "
                           f"still runs here: {xl_said}")
        raise OcfError(codes.ERR_GENERIC,
                       f"migration to {target} failed and {name} does not run here "
                       f"({short_presence(after)}): {xl_said}")

    def migration_address(self, target: str) -> str:
        """The target's address for xl (a plain word: xl passes it to a shell), 1 when
        the target's name or its node attribute is not one."""
        why = migration_address_problem(target)   # also an argument of crm_attribute
        if why:
            raise OcfError(codes.ERR_GENERIC, f"migration target {why}: {target!r}")
        address = self.node_attribute_address(target)
        why = migration_address_problem(address)
        if why:
            raise OcfError(codes.ERR_GENERIC, f"migration address {why}: {address!r} (target {target})")
        return address

    def node_attribute_address(self, target: str) -> str:
        attribute = self.params.migration_address_attribute
        if not attribute:
            return target
        from xenha.tools.crm import Crm, CrmError

        try:
            value = Crm(env=self.env.environ).node_attribute(target, attribute, self.deadline.timeout(LIST_TIMEOUT))
        except CrmError as error:
            raise OcfError(codes.ERR_GENERIC, f"cannot read node attribute {attribute} of {target}: {error}") from None
        if value is None:
            raise OcfError(codes.ERR_GENERIC, f"node attribute {attribute} is not set on {target}")
        return value

    def preflight(self, name: str, target: str, address: str, transport: str) -> None:
        """Reach the target's xl through the transport and make sure it holds no copy."""
        try:
            remote = self.xl.remote_presence(name, transport, address,
                                             self.deadline.timeout(30.0, reserve=self.step_reserve))
        except XlError as error:
            if error.result is not None:  # the transport or the remote xl failed
                raise OcfError(codes.ERR_GENERIC, f"preflight: cannot reach xl on {target}: {error}") from None
            raise OcfError(codes.ERR_GENERIC, f"preflight towards {target} failed: {error}") from None
        if not remote.absent:
            raise OcfError(codes.ERR_GENERIC,
                           f"refusing to migrate: {target} already has {short_presence(remote)}")

    def action_migrate_from(self) -> int:
        name = self.domain_name()
        source = self.env.migrate_source or "the source"
        waited_without_copy = 0.0
        pause = 0.2
        presence = self.observe(name)
        while not presence.running:
            in_flight = presence.incoming is not None or (presence.main is not None and presence.main.state == dom.PAUSED)
            if not in_flight:
                if waited_without_copy >= ARRIVAL_GRACE:
                    break
                waited_without_copy += pause
            if not self.deadline.sleep(pause, reserve=self.step_reserve):
                break
            presence = self.observe(name)
        if not presence.running:
            raise OcfError(codes.ERR_GENERIC,
                           f"domain {name} from {source} is not running here: {short_presence(presence)}")
        self.remember(name)
        self.log.info(f"domain {name} runs here after migration from {source}")
        return codes.SUCCESS

    def action_validate_all(self) -> int:
        if self.check_level >= 10:
            config = self.load_config()
            from xenha.tools import xl_config

            try:
                disks = config.disks()
            except xl_config.XlConfigError as error:
                raise OcfError(codes.ERR_CONFIGURED, str(error)) from None
            if not (self.params.name or config.name):
                self.log.warning("neither the name parameter nor name= in the config: using the resource id")
            self.log.info(f"config {config.path}: domain {self.params.name or config.name}, {len(disks)} disk(s)")
        return codes.SUCCESS

    def action_reload_agent(self) -> int:
        # Nothing is cached between operations: new values apply from the next one.
        return codes.SUCCESS


def domain_name_problem(name: str) -> str | None:
    """Why `name` cannot be a domain this agent creates (dom0, a migration copy's name,
    characters xl or its config parser would misread, look-alikes), None when it can."""
    return names.check_domain_name(name) or config_string_problem(name)


def migration_address_problem(address: str) -> str | None:
    """Why `address` is neither an IP address nor a host name xl can pass to its shell."""
    why = address_problem(address)   # one plain word: xl hands it to `sh -c`
    if why:
        return why
    import ipaddress  # migrate_to only

    try:
        ipaddress.ip_address(address.partition("%")[0])   # IPv4, IPv6 (with a zone)
        return None
    except ValueError:
        return names.check_hostname(address)


def short_presence(presence: dom.DomainPresence) -> str:
    if presence.absent:
        return "no copy"
    return ", ".join(f"{d.name} {'running' if d.active else d.state}" for d in presence.copies())


def not_running_reason(presence: dom.DomainPresence) -> str:
    """Why a present domain does not count as running (for exit reasons)."""
    if presence.absent:
        return f"domain {presence.name} is not running here"
    main = presence.main
    if main is not None and not main.active:
        reason = f", reason {main.shutdown_reason}" if main.shutdown_reason else ""
        state = f"domain {main.name} is {main.state} ({main.letters}{reason})"
    elif main is None:
        state = f"domain {presence.name} has only migration copies"
    else:
        state = f"domain {presence.name} runs next to migration copies"
    extras = [d.name for d in (presence.incoming, presence.migratedaway) if d is not None]
    return state + (": " + ", ".join(extras) if extras else "")


def main() -> int:
    return ocf_main(XenDomainAgent)
