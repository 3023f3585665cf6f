"""The skeleton every xenha agent runs in: dispatch, validation rule, exit reasons.

An agent is a subclass of `ResourceAgent` that declares its parameters and actions
once (they also produce the meta-data) and implements one method per action. `main()`
does the rest:

- the action is argv[1]; further arguments are ignored; unknown action → 3;
- `meta-data` and `usage` never touch the environment (they must work as `nobody`
  with no tools installed);
- before an action, `check_parameters()` (invalid values: 6, except for stop) and
  `check_environment()` validate what that action needs. When they fail, one rule
  decides the answer (resource-agents' ocf-rarun):
  stop → `stop_when_invalid()` (0 only if the resource is provably stopped),
  notify → 0, a `StateUnknown` → 1 (probe included), probe → 7, recurring
  monitor → 1, anything else → the error's own code;
- the binaries an action needs are declared by the drivers (`binaries()`); an agent
  passes its drivers to `require()`, the one place that decides what a missing binary
  means. A tool missing from PATH proves nothing about the resource, so the driver is
  asked whether the kernel side of its tool is on this host (`system_sign()`: Xen, the
  DRBD module, device-mapper). Absent: `ToolMissing` (code 5; nothing can run here, so
  probe 7 and stop 0 are certain). Present: `StateUnknown` (code 1 for every action,
  probe included; stop asks the agent, which answers 0 only when it can prove the
  resource stopped without the tool);
- an `OcfError` from an action becomes its code plus an `ocf-exit-reason:` line;
  running out of time or an unexpected exception becomes 1 with a reason.
"""

import sys

from xenha.ocf import codes
from xenha.ocf.codes import OcfError
from xenha.ocf.deadline import Deadline, DeadlineExceeded
from xenha.ocf.environment import OcfEnvironment, process_environ
from xenha.ocf.log import AgentLog
from xenha.ocf.parameters import parse_parameters


class Action:
    """An action as advertised in meta-data."""

    __slots__ = ("name", "timeout", "interval", "depth", "role", "start_delay")

    def __init__(self, name: str, timeout: int, interval: int | None = None,
                 depth: int | None = None, role: str | None = None,
                 start_delay: int | None = None):
        self.name = name
        self.timeout = timeout          # seconds
        self.interval = interval        # seconds
        self.depth = depth
        self.role = role
        self.start_delay = start_delay


class ToolMissing(OcfError):
    """A binary that a driver needs is not installed, and neither is the kernel side of
    its tool (OCF_ERR_INSTALLED): nothing of this kind can run on this node.

    Raised only by `ResourceAgent.require`; `driver` is the driver that needs it.
    """

    def __init__(self, tool: str, driver):
        super().__init__(codes.ERR_INSTALLED, f"{tool} command not found")
        self.tool = tool
        self.driver = driver


class StateUnknown(OcfError):
    """The environment hides the resource's state (OCF_ERR_GENERIC on every action, the
    probe included: "not running" only when certain). Raised by `require` when a binary
    is missing while the kernel side of its tool is present (`sign` says why we think so)."""

    def __init__(self, reason: str, tool: str | None = None, driver=None, sign: str | None = None):
        super().__init__(codes.ERR_GENERIC, reason)
        self.tool = tool
        self.driver = driver
        self.sign = sign


# Actions every agent answers without touching the environment.
_INFO_ACTIONS = ("meta-data", "usage", "help", "-h", "--help")


class ResourceAgent:
    """Base class of the xenha agents. Subclasses set the class attributes below."""

    NAME = ""            # the agent type, e.g. "xen-domain"
    VERSION = "0.1.0"    # the agent's own version (OCF version is always 1.1)
    SHORTDESC = ""
    LONGDESC = ""
    PARAMETERS = ()
    ACTIONS = ()
    # OCF_CHECK_LEVELs the monitor implements; a request for another level runs the
    # next lower implemented one (OCF).
    CHECK_LEVELS = (0,)

    def __init__(self, env: OcfEnvironment, log: AgentLog, deadline: Deadline):
        self.env = env
        self.log = log
        self.deadline = deadline
        self.params = parse_parameters(self.PARAMETERS, env.reskey)
        for old, new in self.params.deprecated_used:
            log.warning(f"parameter {old} is deprecated, use {new}")

    # --- hooks for subclasses --------------------------------------------------------
    def check_parameters(self) -> None:
        """Invalid parameter values: an error (code 6) for every action but stop, which
        carries on (a failed stop fences the node): with the default for a value that
        does not parse, with the value itself for one `parameter_problems` refuses."""
        if self.env.action == "stop":
            for problem in self.params.errors:
                self.log.warning(f"{problem.reason}; using the default for stop")
            for problem in self.parameter_problems():
                self.log.warning(f"{problem.reason}; stop carries on")
            return
        self.params.raise_first_error()
        for problem in self.parameter_problems():
            raise problem

    def parameter_problems(self) -> list[OcfError]:
        """Values that parse but cannot be used for the current action, e.g. a name a
        tool would misread (see `invalid`)."""
        return []

    def invalid(self, name: str, why: str) -> OcfError:
        """Code 6 for parameter `name`: "parameter name='value': why"."""
        for param in self.PARAMETERS:
            if param.name == name:
                return param.invalid(self.params.get(name), why)
        raise KeyError(name)

    def check_environment(self) -> None:
        """Raise OcfError when what the current action needs is missing or invalid."""

    def stop_when_invalid(self, problem: OcfError) -> int:
        """Stop although `check_environment` failed: 0 only if provably stopped."""
        self.log.exit_reason(f"cannot verify that the resource is stopped: {problem.reason}")
        return codes.ERR_GENERIC

    def require(self, *drivers) -> None:
        """For the first binary one of `drivers` needs and cannot find: ToolMissing when
        the kernel side of that driver's tool is absent from this host, else StateUnknown."""
        for driver in drivers:
            for binary in driver.binaries():
                if not binary.installed():
                    sign = driver.system_sign()
                    if sign is None:
                        raise ToolMissing(binary.name, driver)
                    raise StateUnknown(f"{binary.name} command not found, but {sign}: the resource may be "
                                       "active here and cannot be checked", binary.name, driver, sign)

    # --- derived facts ---------------------------------------------------------------
    @property
    def check_level(self) -> int:
        requested = self.env.check_level
        usable = [level for level in self.CHECK_LEVELS if level <= requested]
        return max(usable) if usable else 0

    @classmethod
    def action_names(cls) -> list[str]:
        names = []
        for action in cls.ACTIONS:
            if action.name not in names:
                names.append(action.name)
        return names

    @classmethod
    def advertised_timeout(cls, action_name: str) -> float:
        for action in cls.ACTIONS:
            if action.name == action_name:
                return float(action.timeout)
        return 20.0

    @classmethod
    def usage(cls) -> str:
        return (f"usage: {cls.NAME} {{{'|'.join(cls.action_names())}}}\n\n"
                "Expects to have a fully populated OCF RA compliant environment set.\n")

    def handler(self, action: str):
        return getattr(self, "action_" + action.replace("-", "_"))

    # --- the one place that turns outcomes into exit codes ---------------------------
    def execute(self) -> int:
        action = self.env.action
        try:
            self.check_parameters()
            self.check_environment()
        except OcfError as problem:
            return self._invalid_environment(problem)
        except DeadlineExceeded as late:
            self.log.exit_reason(f"{action} ran out of time while validating: {late}")
            return codes.ERR_GENERIC
        try:
            return self.handler(action)()
        except OcfError as failure:
            self.log.exit_reason(failure.reason)
            return failure.code
        except DeadlineExceeded as late:
            self.log.exit_reason(f"{action} did not finish within its timeout: {late}")
            return codes.ERR_GENERIC

    def _invalid_environment(self, problem: OcfError) -> int:
        env = self.env
        if env.action == "stop":
            self.log.warning(f"stop with an invalid environment: {problem.reason}")
            return self.stop_when_invalid(problem)
        if env.action == "notify":
            self.log.warning(f"notify with an invalid environment: {problem.reason}")
            return codes.SUCCESS
        if isinstance(problem, StateUnknown):
            self.log.exit_reason(problem.reason)
            return problem.code
        if env.is_probe:
            self.log.info(f"probe: resource cannot run here ({problem.reason}); reporting not running")
            return codes.NOT_RUNNING
        if env.is_recurring_monitor:
            self.log.exit_reason(problem.reason)
            return codes.ERR_GENERIC
        self.log.exit_reason(problem.reason)
        return problem.code


def main(agent_class, argv=None, environ=None, stdout=None, stderr=None) -> int:
    """Run one agent invocation; returns the OCF exit code."""
    argv = sys.argv if argv is None else argv
    environ = process_environ() if environ is None else environ
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    if len(argv) < 2:
        stderr.write(agent_class.usage())
        return codes.ERR_ARGS
    action = argv[1]
    if action == "meta-data":
        from xenha.ocf.metadata import render  # xml.etree only when asked for
        stdout.write(render(agent_class))
        return codes.SUCCESS
    if action in _INFO_ACTIONS:
        stdout.write(agent_class.usage())
        return codes.SUCCESS
    if action not in agent_class.action_names():
        stderr.write(agent_class.usage())
        return codes.ERR_UNIMPLEMENTED
    env = OcfEnvironment(action, environ)
    instance = env.instance or "unnamed"
    log = AgentLog(f"{agent_class.NAME}({instance})", environ, stderr)
    deadline = Deadline.from_timeout_ms(env.timeout_ms, agent_class.advertised_timeout(action))
    try:
        agent = agent_class(env, log, deadline)
        code = agent.execute()
    except Exception as unexpected:  # an agent bug must still give Pacemaker an answer
        log.exit_reason(f"internal error in {action}: {type(unexpected).__name__}: {unexpected}")
        return codes.ERR_GENERIC
    log.debug(f"{action} returned {code} ({codes.name(code)})")
    return code
