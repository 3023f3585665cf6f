"""Domains as the toolstack reports them, and what that means for one VM.

Xen's `xl list` shows six state letters `r b p s <reason> d`. Only a domain that is
running or blocked (or merely runnable, `------`) counts as running; paused, shut down,
crashed and dying domains are states of their own. During a live migration xl renames
the domain: the target holds `NAME--incoming` (paused) until the source says GO, and
the source renames its copy `NAME--migratedaway` just before GO.
"""

# Run states, most significant first when several letters are set.
RUNNING = "running"
BLOCKED = "blocked"
RUNNABLE = "runnable"       # no letter set: waiting for a CPU, still alive
PAUSED = "paused"
SHUTDOWN = "shutdown"       # shut down but not yet destroyed (reason letter tells why)
CRASHED = "crashed"         # shut down with reason "crash" (`--psc-`)
DYING = "dying"

ACTIVE_STATES = (RUNNING, BLOCKED, RUNNABLE)

SHUTDOWN_REASONS = {"-": None, "r": "reboot", "s": "suspend", "c": "crash", "w": "watchdog", "S": "soft_reset"}

INCOMING_SUFFIX = "--incoming"
MIGRATEDAWAY_SUFFIX = "--migratedaway"


def state_from_letters(letters: str) -> str:
    """The run state of a domain from xl's six state letters (e.g. `-b----`, `--psc-`).

    Raises ValueError when the field is not six state letters.
    """
    if len(letters) != 6:
        raise ValueError(f"state field {letters!r} is not 6 characters")
    run, blocked, paused, shutdown, reason, dying = letters
    if (run not in "r-" or blocked not in "b-" or paused not in "p-" or shutdown not in "s-"
            or reason not in SHUTDOWN_REASONS or dying not in "d-"):
        raise ValueError(f"state field {letters!r} has unknown letters")
    if dying == "d":
        return DYING
    if shutdown == "s" or reason != "-":
        return CRASHED if reason == "c" else SHUTDOWN
    if paused == "p":
        return PAUSED
    if run == "r":
        return RUNNING
    if blocked == "b":
        return BLOCKED
    return RUNNABLE


class Domain:
    """One row of the toolstack's domain list."""

    __slots__ = ("name", "domid", "memory_mib", "vcpus", "letters", "state", "cpu_seconds")

    def __init__(self, name: str, domid: int, memory_mib: int, vcpus: int, letters: str,
                 cpu_seconds: float):
        self.name = name
        self.domid = domid
        self.memory_mib = memory_mib
        self.vcpus = vcpus
        self.letters = letters
        self.state = state_from_letters(letters)
        self.cpu_seconds = cpu_seconds

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def shutdown_reason(self) -> str | None:
        return SHUTDOWN_REASONS[self.letters[4]]

    def __repr__(self) -> str:
        return f"Domain({self.name!r}, id={self.domid}, {self.letters} {self.state})"


class DomainPresence:
    """Everything a listing says about one VM name on this host.

    `main` is the domain under its own name; `incoming`/`migratedaway` are the copies
    xl keeps under temporary names during a live migration.
    """

    __slots__ = ("name", "main", "incoming", "migratedaway")

    def __init__(self, name: str, domains):
        self.name = name
        self.main = self.incoming = self.migratedaway = None
        for domain in domains:
            if domain.name == name:
                self.main = domain
            elif domain.name == name + INCOMING_SUFFIX:
                self.incoming = domain
            elif domain.name == name + MIGRATEDAWAY_SUFFIX:
                self.migratedaway = domain

    @property
    def absent(self) -> bool:
        """No trace of the VM on this host, under any name."""
        return self.main is None and self.incoming is None and self.migratedaway is None

    @property
    def running(self) -> bool:
        """Running cleanly under its own name and nothing else in flight."""
        return (self.main is not None and self.main.active
                and self.incoming is None and self.migratedaway is None)

    def copies(self):
        """Every domain of this VM on this host (for stop: all must go)."""
        return [d for d in (self.main, self.incoming, self.migratedaway) if d is not None]

    def describe(self) -> str:
        if self.absent:
            return f"{self.name}: not present"
        parts = [f"{d.name} (id {d.domid}, {d.state}, {d.letters})" for d in self.copies()]
        return ", ".join(parts)


# Outcomes of a live migration as seen from the source.
MIGRATED = "migrated"
FAILED_SOURCE_RESUMED = "failed-source-resumed"    # before the point of no return
FAILED_UNDEFINED = "failed-undefined"              # during the final handshake
FAILED_OTHER = "failed"                            # refused or broken before transfer
