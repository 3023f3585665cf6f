"""The `xl` toolstack (Xen 4.x): argv building, timeouts, parsing, typed errors.

`xl`'s exit codes are not OCF codes and do not distinguish "no such domain" from "the
toolstack failed" (`xl list DOM` exits 1 for both), so nothing here passes an exit
code on: listings are parsed from the whole-host table (one call also shows the
`NAME--incoming`/`NAME--migratedaway` copies of a migration), and every other command
either succeeds or raises `XlError` carrying xl's own words.
"""

from xenha.hypervisor import domain as dom
from xenha.tools import runner
from xenha.tools.tool import Tool

HEADER_FIELDS = ("Name", "ID", "Mem", "VCPUs", "State", "Time(s)")

# No value reaches xl's config parser or a shell as anything but itself:
# - `xl create FILE name="NAME"` appends `name="NAME"` to the config text: NAME must not
#   end the string (a quote), start an escape (backslash: libxlutil versions differ) or
#   a new line;
# - `xl migrate -s TRANSPORT DOM HOST` runs `sh -c "exec TRANSPORT HOST xl migrate-receive"`:
#   TRANSPORT must be plain words (the same to sh and as argv) and HOST one plain word;
# - a domain name after `--`, so that no name is read as an option.
SHELL_SPECIAL = frozenset(";&|<>()$`\\\"'*?[]#~{}!^")
ADDRESS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:%@")


def _shown(chars) -> str:
    return ", ".join(ascii(c) for c in sorted(set(chars)))


def config_string_problem(value: str) -> str | None:
    """Why `value` cannot be written as an xl config string, None when it can."""
    if not value:
        return "is empty"
    bad = [c for c in value if c in "\"'\\" or not c.isprintable()]
    return f"has characters xl's config parser would misread: {_shown(bad)}" if bad else None


def transport_problem(transport: str) -> str | None:
    """Why `transport` is not a command of plain words (what `sh -c` and argv read the
    same), None when it is."""
    words = transport.split()
    if not words:
        return "is empty"
    bad = [c for c in transport if c not in " \t" and (c in SHELL_SPECIAL or not (c.isascii() and c.isprintable()))]
    if bad:
        return f"has characters the shell would interpret: {_shown(bad)}"
    if "=" in words[0]:
        return "starts with an assignment (NAME=value), which the shell reads as a variable"
    return None


def address_problem(address: str) -> str | None:
    """Why `address` is not one plain word a shell passes through (a host name or an IP
    address), None when it is."""
    if not address:
        return "is empty"
    if address[0] == "-":
        return "starts with '-' (would be read as an option)"
    bad = [c for c in address if c not in ADDRESS_CHARS]
    return f"has characters that are not part of an address: {_shown(bad)}" if bad else None


def _refuse_shell_words(what: str, transport: str | None, address: str) -> None:
    for label, value, problem in (("transport", transport, transport is not None and transport_problem(transport)),
                                  ("address", address, address_problem(address))):
        if problem:
            raise XlError(f"refusing to run {what}: {label} {value!r} {problem}")


class XlError(Exception):
    """xl failed or answered something we cannot read: the truth is unknown."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # the finished command (runner.CommandResult); None: unreadable output


def parse_list(text: str) -> list[dom.Domain]:
    """Parse the `xl list` table (header checked; columns split on whitespace).

    The header contains tabs (`...VCPUs\\tState\\tTime(s)`), so rows are split on any
    whitespace, from the right: a name is everything before the last five columns.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise XlError("xl list printed nothing")
    if tuple(lines[0].split()) != HEADER_FIELDS:
        raise XlError(f"xl list printed an unknown header: {lines[0].strip()!r}")
    domains = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 6:
            raise XlError(f"xl list printed an unreadable row: {line.strip()!r}")
        name = " ".join(fields[:-5])
        try:
            domains.append(dom.Domain(name, int(fields[-5]), int(fields[-4]), int(fields[-3]),
                                      fields[-2], float(fields[-1])))
        except ValueError as bad:
            raise XlError(f"xl list printed an unreadable row: {line.strip()!r} ({bad})") from None
    return domains


def parse_info(text: str) -> dict:
    """Parse `xl info`: `key : value` lines."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def classify_migration(result: runner.CommandResult) -> str:
    """What a finished `xl migrate` means for the domain (see `hypervisor.domain`).

    xl prints on stderr which side of the point of no return it failed on:
    before GO the source resumes; after GO ("failed during final handshake") the
    domain's state is undefined and may exist on both hosts. A killed `xl migrate`
    (timeout) is undefined too.
    """
    text = result.stderr
    if result.timed_out:
        return dom.FAILED_UNDEFINED
    if result.returncode == 0:
        return dom.MIGRATED
    if "failed during final handshake" in text or "Domain state is now undefined" in text:
        return dom.FAILED_UNDEFINED
    if ("resuming at sender" in text or "problems at target" in text
            or "failed to suspend at sender" in text):
        return dom.FAILED_SOURCE_RESUMED
    return dom.FAILED_OTHER


class Xl:
    """The xl driver: every call bounded by a timeout, every failure an XlError."""

    def __init__(self, binary: str = "xl", env=None):
        self.env = env
        self.xl = Tool(binary, env)

    def binaries(self) -> tuple:
        return (self.xl,)

    def system_sign(self) -> str | None:
        """Why this host runs Xen or has its toolstack (a phrase), None when neither."""
        from xenha.tools.host import Host, sign_of_xen

        return sign_of_xen(Host(self.env))

    def _run(self, args, timeout: float, stdin: bytes | None = None) -> runner.CommandResult:
        return self.xl.run(args, timeout, stdin=stdin)

    def _checked(self, args, timeout: float) -> runner.CommandResult:
        result = self._run(args, timeout)
        if not result.ok:
            raise XlError(result.describe(), result)
        return result

    def list_domains(self, timeout: float) -> list[dom.Domain]:
        result = self._checked(["list"], timeout)
        return parse_list(result.stdout)

    def presence(self, name: str, timeout: float) -> dom.DomainPresence:
        return dom.DomainPresence(name, self.list_domains(timeout))

    def info(self, timeout: float) -> dict:
        return parse_info(self._checked(["info"], timeout).stdout)

    def create(self, config: str, name: str, timeout: float, paused: bool = False) -> runner.CommandResult:
        """`xl create CONFIG name="NAME"`: `key=value` arguments are appended to the config,
        so the domain gets the name we monitor. XlError, before anything runs, for a
        name xl's parser would read as more than a string."""
        problem = config_string_problem(name)
        if problem:
            raise XlError(f"domain name {name!r} {problem}")
        if "=" in config:   # xl reads any argument with "=" as a config line, not a file
            raise XlError(f"config path {config!r} contains '=', which xl create reads as a setting")
        args = ["create"] + (["-p"] if paused else []) + ["--", config, f'name="{name}"']
        return self._checked(args, timeout)

    def shutdown(self, name: str, timeout: float, acpi_fallback: bool = False) -> runner.CommandResult:
        return self._checked(["shutdown"] + (["-F"] if acpi_fallback else []) + ["--", name], timeout)

    def trigger_power(self, name: str, timeout: float) -> runner.CommandResult:
        return self._checked(["trigger", "--", name, "power"], timeout)

    def destroy(self, name: str, timeout: float) -> runner.CommandResult:
        return self._checked(["destroy", "--", name], timeout)

    def unpause(self, name: str, timeout: float) -> runner.CommandResult:
        return self._checked(["unpause", "--", name], timeout)

    def migrate(self, name: str, host: str, transport: str | None, timeout: float):
        """Live-migrate `name` to `host`; returns (outcome, CommandResult).

        `transport` replaces ssh (`xl migrate -s`); None keeps xl's default ssh. xl hands
        TRANSPORT and HOST to `sh -c`: XlError, before anything runs, unless both are
        plain words (transport_problem, address_problem).
        """
        _refuse_shell_words("xl migrate", transport, host)
        args = ["migrate"]
        if transport is not None:
            args += ["-s", transport]
        result = self._run(args + ["--", name, host], timeout)
        return classify_migration(result), result

    def remote_presence(self, name: str, transport: str, address: str, timeout: float) -> dom.DomainPresence:
        """What `xl list` on another host says about `name`, reached through the
        migration transport (the migration preflight): `TRANSPORT... ADDRESS xl list` as
        argv, no shell. XlError when the transport or the remote xl fails (`result`
        set), or the transport, the address or the answer is unusable (`result` None)."""
        _refuse_shell_words("the preflight", transport, address)
        argv = transport.split() + [address, "xl", "list"]
        try:
            result = runner.run(argv, timeout, env=self.env)
        except runner.ToolNotFound:
            raise XlError(f"transport command {argv[0]} not found") from None
        if not result.ok:
            raise XlError(result.describe(), result)
        return dom.DomainPresence(name, parse_list(result.stdout))
